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
"""Helpers for the CLI tests: run ``main()`` in-process, capture output."""

import io
import logging
import sys

import fixtures
import testtools

from cloudkitty.cli import main


class _GlobalLoggingState(fixtures.Fixture):
    """Restore what oslo.log's setup() changes process-wide."""

    def _setUp(self):
        root = logging.getLogger()
        handlers = list(root.handlers)
        level = root.level
        excepthook = sys.excepthook

        def restore():
            for handler in list(root.handlers):
                root.removeHandler(handler)
            for handler in handlers:
                root.addHandler(handler)
            root.setLevel(level)
            sys.excepthook = excepthook

        self.addCleanup(restore)


class CLITestCase(testtools.TestCase):
    """Runs ``cloudkitty-storage`` in-process; ``self.tmp`` is a new dir."""

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.useFixture(_GlobalLoggingState())

    def run_main(self, argv):
        """Run ``main(argv)``; return ``(exit code, stdout, stderr)``."""
        stdout = io.StringIO()
        stderr = io.StringIO()
        # NOTE: oslo.log's handler writes to the sys.stderr of setup time.
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', stderr))
        code = main.main(argv, stdout=stdout, stderr=stderr)
        return code, stdout.getvalue(), stderr.getvalue()
