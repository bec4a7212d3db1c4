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


def test_render_keeps_unchanged_rotates_changed_removes_absent():
    first = passwords.render_file([("a", "pa"), ("b", "pb"), ("c", "pc")], iterations=101)
    lines = dict(line.split(":", 1) for line in first.splitlines())
    again = passwords.render_file([("a", "pa"), ("b", "pb"), ("c", "pc")], existing=first, iterations=101)
    assert again == first  # idempotent: nothing re-hashed
    rotated = passwords.render_file([("a", "pa"), ("b", "NEW")], existing=first, iterations=101)
    new = dict(line.split(":", 1) for line in rotated.splitlines())
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
