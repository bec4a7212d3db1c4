"""rampart.mqtt.template: ansible.builtin.template's lookup, without a deep copy of every variable on each call."""

from __future__ import annotations

DOCUMENTATION = r"""
name: template
author: Rampart
short_description: ansible.builtin.template's lookup, without a deep copy of every variable per call
description:
  - Renders a template exactly as C(lookup('ansible.builtin.template', ...)) does, with the same options.
  - ansible-core's lookup deep-copies every variable of the task before each template (its own FIXME in the source
    asks why it is no chain map), so its cost grows with the inventory, however small the template. With 2,000 MQTT
    clients in the inventory, a task that renders two small files took 2.2 s instead of 0.5 s, and the copies were
    half of the run's CPU. This lookup gives it a shallow copy of the top-level mapping instead.
    The variables the lookup adds (template_path, ansible_managed, template_vars) still go into a copy of their
    own and never reach the task's variables. Rampart's templates only read variables.
options:
  _terms:
    description: The template files, as for ansible.builtin.template.
  template_vars:
    description: As for ansible.builtin.template.
    default: {}
  convert_data:
    description: As for ansible.builtin.template.
    type: bool
  variable_start_string:
    description: As for ansible.builtin.template.
    default: '{{'
  variable_end_string:
    description: As for ansible.builtin.template.
    default: '}}'
  comment_start_string:
    description: As for ansible.builtin.template.
    default: '{#'
  comment_end_string:
    description: As for ansible.builtin.template.
    default: '#}'
  jinja2_native:
    description: As for ansible.builtin.template.
    type: bool
    default: false
  trim_blocks:
    description: As for ansible.builtin.template.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Render the broker's configuration
  ansible.builtin.debug:
    msg: "{{ lookup('rampart.mqtt.template', 'etc/mosquitto/mosquitto.conf.j2') }}"
"""

RETURN = r"""
_raw:
  description: The rendered templates, as for ansible.builtin.template.
  type: list
  elements: raw
"""

from ansible.plugins.lookup.template import LookupModule as _TemplateLookup  # noqa: E402


class _CopiedShallowly(dict):
    """The task's variables; ``copy.deepcopy`` of it is a shallow copy (the nested values are shared, read-only)."""

    def __deepcopy__(self, memo):
        return dict(self)


class LookupModule(_TemplateLookup):
    def run(self, terms, variables=None, **kwargs):
        return super().run(terms, variables=_CopiedShallowly(variables or {}), **kwargs)
