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
"""get_retention(): the configured retention period."""

import datetime


class RetentionTests:
    """get_retention() reflects ``[storage] retention_period``.

    Data: none; each test builds a storage of its own when it changes the
    configuration.
    """

    def test_retention_matches_conf(self):
        """Retention: get_retention() is retention_period hours."""
        self.assertEqual(
            datetime.timedelta(hours=self.conf.storage.retention_period),
            self.storage.get_retention())

    def test_default_retention(self):
        """Retention: the default is 2400 hours."""
        self.conf.clear_override('retention_period', group='storage')
        self.assertEqual(datetime.timedelta(hours=2400),
                         self.make_storage().get_retention())

    def test_configured_retention(self):
        """Retention: a configured retention_period is honoured."""
        self.conf.set_override('retention_period', 48, group='storage')
        self.assertEqual(datetime.timedelta(hours=48),
                         self.make_storage().get_retention())
