"""lookup('rampart.mqtt.template') renders what lookup('ansible.builtin.template') renders, options included, and
what it adds for the template never reaches the task's variables (it shares the nested values instead of copying
them, which is what makes it cheap with a large inventory)."""

from __future__ import annotations

import json
import sys

from rampart import results
from tests.support import ANSIBLE_PLAYBOOK, REPO, ansible_env

TEMPLATE = """\
{{ ansible_managed | comment }}
host={{ inventory_hostname }} clients={{ clients | map(attribute='name') | join(',') }}
path={{ template_path | basename }}
{% for c in clients if c.admin | default(false) %}admin={{ c.name }} {% endfor %}extra={{ extra | default('none') }}
"""

PLAYBOOK = """\
- name: Both lookups
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    clients: [{name: a, admin: true}, {name: b}]
  tasks:
    - name: Render with each lookup, with and without options
      ansible.builtin.set_fact:
        rendered:
          builtin: "{{ lookup('ansible.builtin.template', 'demo.j2') }}"
          ours: "{{ lookup('rampart.mqtt.template', 'demo.j2') }}"
          builtin_vars: "{{ lookup('ansible.builtin.template', 'demo.j2', template_vars={'extra': 'x'}) }}"
          ours_vars: "{{ lookup('rampart.mqtt.template', 'demo.j2', template_vars={'extra': 'x'}) }}"
    - name: Show what stayed in the task's variables
      ansible.builtin.copy:
        content: "{{ {'rendered': rendered, 'extra': extra | default('unset'),
                      'template_path': template_path | default('unset'), 'clients': clients} | to_json }}"
        dest: "{{ scratch }}/out.json"
        mode: "0600"
"""


def test_the_lookup_renders_as_the_builtin_and_leaks_nothing(tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "demo.j2").write_text(TEMPLATE)
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    cmd = [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", str(tmp_path / "play.yml"), "-e", f"scratch={tmp_path}",
           "-e", f"ansible_python_interpreter={sys.executable}"]
    run = results.run(cmd, env=ansible_env(ANSIBLE_CONFIG=str(REPO / "ansible.cfg")), cwd=tmp_path, timeout=120)
    assert run.rc == 0, run.output[-2000:]
    out = json.loads((tmp_path / "out.json").read_text())
    rendered = out["rendered"]
    assert rendered["ours"] == rendered["builtin"]
    assert rendered["ours_vars"] == rendered["builtin_vars"]
    assert "clients=a,b\npath=demo.j2" in rendered["ours"] and "admin=a extra=none" in rendered["ours"]
    assert "extra=x" in rendered["ours_vars"]
    assert (out["extra"], out["template_path"]) == ("unset", "unset")
    assert out["clients"] == [{"name": "a", "admin": True}, {"name": "b"}]
