# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.
"""Command docstrings, written in reStructuredText, as plain help text.

The docstrings feed both the documentation and ``--help``; the terminal
gets them without markup (``--yes`` for ````--yes````, ``Features`` for
``:class:`~cloudkitty.storage.v2.Features```).
"""

import re

# NOTE: :role:`text <target>`, :role:`~dotted.name` and :role:`name`.
_ROLE = re.compile(r':[a-z]+(?::[a-z]+)?:`([^`]*)`')
_LITERAL = re.compile(r'``(.+?)``', re.DOTALL)
_INTERPRETED = re.compile(r'(?<![`\w])`([^`]+)`(?![`\w])')
_STRONG = re.compile(r'\*\*(\S(?:.*?\S)?)\*\*')


def _role_text(match):
    text = match.group(1)
    titled = re.match(r'(.*?)\s*<[^>]*>\Z', text, re.DOTALL)
    if titled:
        return titled.group(1)
    if text.startswith('~'):
        return text[1:].rsplit('.', 1)[-1]
    return text


def plain_text(text):
    """Return reStructuredText ``text`` without its inline markup.

    Roles keep their title (``~`` keeps the last dotted part), literals
    and interpreted text lose their backquotes, and a paragraph ending in
    ``::`` ends in one colon.

    :rtype: str
    """
    text = _ROLE.sub(_role_text, text)
    text = _LITERAL.sub(r'\1', text)
    text = _INTERPRETED.sub(r'\1', text)
    text = _STRONG.sub(r'\1', text)
    text = re.sub(r'(\S)::$', r'\1:', text, flags=re.MULTILINE)
    return re.sub(r'^\s*::\s*$\n?', '', text, flags=re.MULTILINE)


class PlainHelp:
    """Mixin for cliff commands: the description, as plain text."""

    def get_description(self):
        """Return the docstring without reStructuredText markup.

        :rtype: str
        """
        return plain_text(super().get_description())
