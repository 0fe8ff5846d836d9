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
"""What every migration needs to create a table the same way."""


def table_options(bind):
    """Return the ``create_table`` keyword options for ``bind``'s dialect.

    On MySQL/MariaDB: utf8mb4, InnoDB, and a NO PAD binary collation, so
    that values compare byte for byte (case and trailing spaces matter,
    ``'a' != 'a '``). Nothing elsewhere.
    """
    if bind.dialect.name != 'mysql':
        return {}
    collation = ('utf8mb4_nopad_bin' if bind.dialect.is_mariadb
                 else 'utf8mb4_0900_bin')
    return {'mysql_charset': 'utf8mb4', 'mysql_collate': collation,
            'mysql_engine': 'InnoDB'}
