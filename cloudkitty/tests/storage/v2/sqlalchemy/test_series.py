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
"""Unit tests of the series identity and label rows (no database)."""

import testtools

from cloudkitty.storage.v2.sqlalchemy import series
from cloudkitty.tests import fixtures as builders


def key_of(point):
    """The exact in-process identity of a point's series."""
    return series.exact_key(series.series_key('s', 'cpu', point), point)


class SeriesKeyTest(testtools.TestCase):

    def test_str_labels_keep_the_plain_key(self):
        """All-str labels: the exact key is the plain key itself."""
        point = builders.make_point('p', groupby={'a': '1'},
                                    metadata={'b': ''})
        plain = series.series_key('s', 'cpu', point)
        self.assertIs(plain, series.exact_key(plain, point))

    def test_equal_values_of_other_types_are_other_keys(self):
        """1, 1.0, True (equal in Python), 0.0 and -0.0 differ."""
        values = (1, 1.0, True, '1', 0.0, -0.0, None)
        for role in ('groupby', 'metadata'):
            keys = {key_of(builders.make_point('p', **{role: {'k': v}}))
                    for v in values}
            self.assertEqual(len(values), len(keys), role)

    def test_series_rows_differ_by_type(self):
        """Fingerprints (JSON) tell the types apart; labels are typed."""
        rows = [series.series_row('s', 'cpu', builders.make_point(
            'p', groupby={'k': v})) for v in (1, 1.0, True, '1', None)]
        self.assertEqual(5, len({row['fingerprint'] for row in rows}))
        self.assertEqual(
            [('1', 'i'), ('1.0', 'f'), ('True', 'b'), ('1', 's'),
             ('None', 'n')],
            [(label['value'], label['kind']) for label in (
                series.label_row(1, 'k', row['labels']['k'])
                for row in rows)])
