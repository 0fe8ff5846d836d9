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
"""Unit tests of ``tools/check-doc-layout``, the docs' layout check."""

from importlib import machinery
from importlib import util
import os
import subprocess
import textwrap

import fixtures
import testtools

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
# NOTE: the script has no .py suffix, so it is loaded by path.
_LOADER = machinery.SourceFileLoader(
    'check_doc_layout', os.path.join(ROOT, 'tools', 'check-doc-layout'))
checker = util.module_from_spec(util.spec_from_loader(_LOADER.name,
                                                      _LOADER))
_LOADER.exec_module(checker)

SETUP_CFG = """\
[entry_points]
cloudkitty.storage.cli =
    init = pkg.cli:Init
    push = pkg.cli:Push
"""

README = """\
Title
=====

Layout
------

::

    pkg/__init__.py    the package
    pkg/cli/           cloudkitty-storage: init,
                       push

The end.
"""

GUIDE = """\
Tests::

    $ tree -L 1 pkg
    pkg
    ├── __init__.py
    └── cli

And more.
"""


class CheckDocLayoutTest(testtools.TestCase):
    """The drawings of a small tree, right and wrong."""

    def setUp(self):
        super().setUp()
        self.root = self.useFixture(fixtures.TempDir()).path
        os.makedirs(os.path.join(self.root, 'pkg', 'cli', '__pycache__'))
        for path in ('pkg/__init__.py', 'pkg/cli/__init__.py', 'pkg/x.pyc'):
            open(os.path.join(self.root, path), 'w').close()
        self.write('setup.cfg', SETUP_CFG)

    def write(self, name, text):
        with open(os.path.join(self.root, name), 'w') as stream:
            stream.write(textwrap.dedent(text))

    def check(self, readme=README, guide=GUIDE):
        self.write('README.rst', readme)
        self.write('guide.rst', guide)
        return checker.check(self.root, ['README.rst', 'guide.rst'])

    def test_matching_drawings(self):
        """A layout and a tree that match the files give no error."""
        self.assertEqual([], self.check())

    def test_missing_path(self):
        """A layout entry that does not exist is reported."""
        errors = self.check(readme=README.replace('pkg/__init__.py',
                                                  'pkg/gone.py    '))
        self.assertEqual(['README.rst:9: pkg/gone.py does not exist'],
                         errors)

    def test_file_drawn_as_directory(self):
        """An entry ending in / must be a directory."""
        errors = self.check(readme=README.replace('pkg/__init__.py',
                                                  'pkg/__init__.py/'))
        self.assertIn('is not a directory', errors[0])

    def test_commands(self):
        """The commands a layout names are setup.cfg's, no fewer."""
        errors = self.check(readme=README.replace(
            'init,\n                       push', 'init'))
        self.assertEqual(1, len(errors), errors)
        self.assertIn('should be init, push', errors[0])

    def test_tree_lacks_a_file(self):
        """A tree drawing missing a file is reported."""
        open(os.path.join(self.root, 'pkg', 'new.py'), 'w').close()
        self.assertEqual(['guide.rst:3: the tree of pkg lacks new.py'],
                         self.check())

    def test_tree_shows_a_gone_file(self):
        """A tree drawing showing a file that is gone is reported."""
        errors = self.check(guide=GUIDE.replace(
            '├── __init__.py', '├── __init__.py\n    ├── old.py'))
        self.assertEqual(['guide.rst:3: the tree of pkg shows old.py, '
                          'which does not exist'], errors)

    def test_unlimited_tree(self):
        """Without -L, the drawing must show every level."""
        errors = self.check(guide=GUIDE.replace('-L 1 ', ''))
        self.assertEqual(['guide.rst:3: the tree of pkg lacks '
                          'cli/__init__.py'], errors)

    def test_annotated_entries(self):
        """A note after two spaces, and "/" after a directory, are allowed."""
        guide = GUIDE.replace('├── __init__.py',
                              '├── __init__.py  the package')
        guide = guide.replace('└── cli', '└── cli/         its commands')
        self.assertEqual([], self.check(guide=guide))
        errors = self.check(guide=guide.replace('cli/ ', 'cmd/ '))
        self.assertIn('guide.rst:3: the tree of pkg shows cmd, which does '
                      'not exist', errors)

    def test_git_ignored_files_are_left_out(self):
        """In a git checkout, what .gitignore names is not in the tree.

        A file or directory git ignores (a build, a scratch file) does not
        fail the check; an untracked file git does not ignore still does.
        """
        subprocess.run(['git', 'init', '-q', self.root], check=True)
        self.write('.gitignore', 'scratch.txt\nbuild/\n')
        os.makedirs(os.path.join(self.root, 'pkg', 'build'))
        open(os.path.join(self.root, 'pkg', 'scratch.txt'), 'w').close()
        self.assertEqual([], self.check())
        open(os.path.join(self.root, 'pkg', 'stray.py'), 'w').close()
        self.assertEqual(['guide.rst:3: the tree of pkg lacks stray.py'],
                         self.check())
