import pytest
from ansible_collections.rampart.mqtt.plugins.module_utils import passwords

# Test vectors from mosquitto_facts.md section 3.3: the upstream test suite ($6$) and lines written by
# Debian 12's mosquitto_passwd 2.0.11 ($7$).
VECTORS = [
    ("user:$6$vZY4TS+/HBxHw38S$vvjVFECzb8dyuu/mruD2QKTfdFn0WmKxbc+1TsdB0L8EdHk3v9JRmfjHd56+VaTnUcSZOZ/"
     "hzkdvWCtxlX7AUQ==", "password"),
    ("test:$6$njERlZMi/7DzNB9E$iiavfuXvUm8iyDZArTy7smTxh07GXXOrOsqxfW6gkOYVXHGk+W+i/8d3xDxrMwEPygEBhoA8A/"
     "gjQC0N2M4Lkw==", "test"),
    ("alice:$7$101$MLulNt3cn/4M2U5x$kGtbdiinEa6fdDVluz2enYNJG/2wrdul/+Q5vkQfxoqnvj6sYs2pCLWFMOM7qRWZ75ipRody"
     "8tGMrqcDrlygGQ==", "s3cret pass"),
    ("bob:$7$1000$J1GqMvLaP0xyjx1h$ZpwoRcOeRe82rAPW1Yq/wBvl4E/Go4DU65PX45J0J3OHLanNhpQ7zTbPIQm1moT7k4A7+Cif4"
     "j3nDnyJHSrE9g==", "hunter2"),
]


@pytest.mark.parametrize(("line", "password"), VECTORS)
def test_vectors_verify(line, password):
    assert passwords.verify_line(line, password)
    assert not passwords.verify_line(line, password + "x")
    assert not passwords.verify_line(line, "")


def test_debian_line_reproduced_byte_for_byte():
    line, password = VECTORS[2]
    salt = passwords._unb64(line.split("$")[3])
    assert passwords.hash_line("alice", password, iterations=101, salt=salt) == line


def test_new_line_shape():
    line = passwords.hash_line("sensor-01", "pw", iterations=10_000)
    user, rest = line.split(":", 1)
    kind, iterations, salt, digest = rest.split("$")[1:]
    assert (user, kind, iterations) == ("sensor-01", "7", "10000")
    assert len(passwords._unb64(salt)) == 12 and len(salt) == 16
    assert len(passwords._unb64(digest)) == 64 and digest.endswith("==")
    assert passwords.verify_line(line, "pw")


def test_fresh_salt_each_time():
    assert passwords.hash_line("a", "pw") != passwords.hash_line("a", "pw")


@pytest.mark.parametrize("bad", ["", "a:b", "tab\there", "nl\n", " lead", "trail "])
def test_bad_usernames_rejected(bad):
    assert passwords.username_problem(bad)
    with pytest.raises(ValueError):
        passwords.hash_line(bad, "pw")


def test_empty_password_rejected():
    with pytest.raises(ValueError, match="non-empty"):
        passwords.hash_line("a", "")


GARBAGE = ["bad:", "bad:bad", "bad:$", "bad:$6", "bad:$6$c2FsdA==", "x:$5$a$b",
           "x:$7$0$MLulNt3cn/4M2U5x$" + "A" * 88, ":$7$101$MLulNt3cn/4M2U5x$" + "A" * 86 + "=="]


@pytest.mark.parametrize("garbage", GARBAGE)
def test_malformed_lines_never_verify(garbage):
    assert passwords.parse_line(garbage) is None
    assert not passwords.verify_line(garbage, "bad")


def user_lines(text: str) -> dict[str, str]:
    """username -> hash of every line the broker reads (it skips the seals, comments to it)."""
    return dict(line.split(":", 1) for line in text.splitlines() if not line.startswith("#"))


def test_render_keeps_unchanged_rotates_changed_removes_absent():
    first = passwords.render_file([("a", "pa"), ("b", "pb"), ("c", "pc")], iterations=101)
    lines = user_lines(first)
    again = passwords.render_file([("a", "pa"), ("b", "pb"), ("c", "pc")], existing=first, iterations=101)
    assert again == first  # idempotent: nothing re-hashed
    rotated = passwords.render_file([("a", "pa"), ("b", "NEW")], existing=first, iterations=101)
    new = user_lines(rotated)
    assert new["a"] == lines["a"]
    assert new["b"] != lines["b"]
    assert passwords.verify_line("b:" + new["b"], "NEW")
    assert not passwords.verify_line("b:" + new["b"], "pb")
    assert "c" not in new


def test_render_rehashes_when_iterations_change():
    first = passwords.render_file([("a", "pa")], iterations=101)
    second = passwords.render_file([("a", "pa")], existing=first, iterations=1000)
    assert second != first and "$7$1000$" in second


def test_render_rejects_duplicates():
    with pytest.raises(ValueError, match="duplicate"):
        passwords.render_file([("a", "1"), ("a", "2")])


USERS = [(f"device-{i:04d}", f"secret-{i:04d}") for i in range(300)]


@pytest.fixture
def verifications(monkeypatch):
    """Counts the per-line verifications render_file makes."""
    calls = []
    real = passwords.verify_line
    monkeypatch.setattr(passwords, "verify_line", lambda line, pw: calls.append(line) or real(line, pw))
    return calls


def test_a_rerun_of_a_sealed_file_verifies_no_line(verifications):
    first = passwords.render_file(USERS, iterations=101)
    assert first.count("\n# rampart-seal ") == len({passwords._group(u) for u, _ in USERS})
    assert passwords.render_file(USERS, existing=first, iterations=101) == first
    assert verifications == []


def test_one_changed_password_verifies_only_its_group(verifications):
    first = passwords.render_file(USERS, iterations=101)
    changed = [(u, "rotated" if u == "device-0007" else p) for u, p in USERS]
    second = passwords.render_file(changed, existing=first, iterations=101)
    group = [u for u, _ in USERS if passwords._group(u) == passwords._group("device-0007")]
    assert len(verifications) == len(group) < len(USERS) / 10
    old, new = user_lines(first), user_lines(second)
    assert {u for u in old if old[u] != new[u]} == {"device-0007"}
    assert passwords.verify_line("device-0007:" + new["device-0007"], "rotated")
    assert passwords.render_file(changed, existing=second, iterations=101) == second


def test_a_line_edited_under_an_intact_seal_is_caught_and_replaced():
    first = passwords.render_file(USERS, iterations=101)
    forged = passwords.hash_line("device-0042", "attacker", 101)
    tampered = "".join(forged + "\n" if line.startswith("device-0042:") else line + "\n"
                       for line in first.splitlines())
    healed = passwords.render_file(USERS, existing=tampered, iterations=101)
    line = "device-0042:" + user_lines(healed)["device-0042"]
    assert passwords.verify_line(line, "secret-0042") and not passwords.verify_line(line, "attacker")


def test_a_forged_seal_only_costs_the_verification_of_its_group(verifications):
    first = passwords.render_file(USERS, iterations=101)
    group = passwords._group("device-0001")
    forged = passwords._seal_line(group, [("device-0001", "guess", "device-0001:x")], 101)
    tampered = "".join((forged if line.startswith(f"# rampart-seal {group} ") else line) + "\n"
                       for line in first.splitlines())
    healed = passwords.render_file(USERS, existing=tampered, iterations=101)
    assert user_lines(healed) == user_lines(first)  # every line verified and kept
    assert healed != tampered and len(verifications) == sum(passwords._group(u) == group for u, _ in USERS)


def test_a_file_without_seals_keeps_its_lines_and_gains_them():
    plain = "".join(passwords.hash_line(u, p, 101) + "\n" for u, p in USERS[:20])
    sealed = passwords.render_file(USERS[:20], existing=plain, iterations=101)
    assert [ln for ln in sealed.splitlines() if not ln.startswith("#")] == plain.splitlines()
    assert "# rampart-seal " in sealed


def test_the_broker_reads_no_seal_as_a_user():
    text = passwords.render_file(USERS[:5], iterations=101)
    assert {passwords.parse_line(line)[0] for line in text.splitlines() if passwords.parse_line(line)} == \
        {u for u, _ in USERS[:5]}
