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
"""``cloudkitty-storage demo``: a month of rated data in a SQLite file.

The data is a whole UTC month (by default the previous one) of hourly rated
periods for four projects, each with a few instances, volumes, images and
network ports. Values come from a generator with a fixed seed, and prices
are exact Decimals, so a given month always yields the same data and the
same totals.
"""

import contextlib
import datetime
import decimal
import os
import random
import shlex
import uuid

from oslo_log import log

from cloudkitty.cli import main
from cloudkitty.cli import report
from cloudkitty.cli import rst
from cloudkitty import dataframe
from cloudkitty.storage.v2 import query

LOG = log.getLogger(__name__)

UTC = datetime.timezone.utc
D = decimal.Decimal

#: Default database file, in the working directory.
DEFAULT_DATABASE = 'cloudkitty-demo.sqlite'
#: Number of demo projects.
PROJECTS = 4
#: Seed of the generator: the same month always yields the same data.
SEED = 20260101
#: Namespace of the demo's deterministic UUIDs.
NAMESPACE = uuid.UUID('2d21e069-92e2-4b00-8c98-32e3f495bd74')

#: Hourly price of an instance, by flavor.
FLAVORS = (('m1.tiny', D('0.0050')), ('m1.small', D('0.0125')),
           ('m1.medium', D('0.0250')), ('m1.large', D('0.0500')))
#: Hourly price of one GiB of volume, by volume type.
VOLUME_TYPES = (('standard', D('0.0002')), ('ssd', D('0.0004')))
#: Volume sizes, in GiB.
VOLUME_SIZES = (10, 20, 50, 100)
#: Hourly price of one GiB of image.
IMAGE_PRICE = D('0.0001')
#: Image sizes, in GiB.
IMAGE_SIZES = (1, 2, 4, 8)
#: Price of one GB of outgoing traffic.
BANDWIDTH_PRICE = D('0.0100')
#: SQLite files begin with these 16 bytes.
SQLITE_MAGIC = b'SQLite format 3\x00'


def _uuid(*parts):
    """Return a deterministic UUID (hex) for the given name parts."""
    return uuid.uuid5(NAMESPACE, '/'.join(str(p) for p in parts)).hex


def _month(text):
    """argparse type: ``YYYY-MM`` to the aware UTC start of that month."""
    moment = datetime.datetime.strptime(text, '%Y-%m')
    return moment.replace(tzinfo=UTC)


_month.__name__ = 'YYYY-MM month'


def previous_month(now=None):
    """Return the start of the UTC month before the one holding ``now``.

    :rtype: datetime.datetime
    """
    now = now or datetime.datetime.now(UTC)
    return query.month_start(query.month_start(now) - datetime.timedelta(1))


class _Resource:
    """One demo resource: how to rate it for a given hour."""

    def __init__(self, type_, unit, groupby, metadata, first_hour, qty,
                 price):
        self.type = type_
        self.unit = unit
        self.groupby = groupby
        self.metadata = metadata
        self.first_hour = first_hour
        self.qty = qty
        self.price = price

    def point(self, rng):
        """Return this resource's DataPoint for one hour."""
        if self.type == 'network.bw':
            # NOTE: traffic varies by the hour; 0 to 1.999 GB, exact.
            qty = D(rng.randrange(2000)).scaleb(-3)
            price = qty * BANDWIDTH_PRICE
        else:
            qty, price = self.qty, self.price
        return dataframe.DataPoint(self.unit, qty, price, self.groupby,
                                   self.metadata)


def _project_resources(rng, index, hours):
    """Return the resources of demo project ``index``."""
    project_id = _uuid('project', index)
    user_id = _uuid('user', index)
    resources = []

    def first_hour():
        # NOTE: most resources exist all month, some appear later.
        return 0 if rng.random() < 0.7 else rng.randrange(hours)

    def labels(kind, number):
        return {'project_id': project_id, 'user_id': user_id,
                'id': _uuid(kind, index, number)}

    for number in range(rng.randint(2, 4)):
        flavor, price = rng.choice(FLAVORS)
        start = first_hour()
        resources.append(_Resource(
            'instance', 'instance', labels('instance', number),
            {'flavor_name': flavor}, start, D(1), price))
        resources.append(_Resource(
            'network.bw', 'GB', labels('port', number),
            {'instance_id': labels('instance', number)['id']}, start,
            None, None))
    for number in range(rng.randint(1, 3)):
        volume_type, price = rng.choice(VOLUME_TYPES)
        size = rng.choice(VOLUME_SIZES)
        resources.append(_Resource(
            'volume', 'GiB', labels('volume', number),
            {'volume_type': volume_type}, first_hour(), D(size),
            size * price))
    for number in range(rng.randint(1, 2)):
        size = rng.choice(IMAGE_SIZES)
        resources.append(_Resource(
            'image', 'GiB', labels('image', number),
            {'disk_format': rng.choice(('qcow2', 'raw'))}, first_hour(),
            D(size), size * IMAGE_PRICE))
    return project_id, resources


def generate(month_start):
    """Yield the demo data of a month, one ``(project_id, frame)`` each.

    There is one frame per hour and project (hours where the project has
    no resource yet are skipped), in time order.

    :param month_start: start of the UTC month.
    :type month_start: datetime.datetime
    """
    end = query.next_month(month_start)
    hours = int((end - month_start).total_seconds()) // 3600
    rng = random.Random(SEED)
    projects = [_project_resources(rng, i, hours) for i in range(PROJECTS)]
    for hour in range(hours):
        start = month_start + datetime.timedelta(hours=hour)
        for project_id, resources in projects:
            frame = dataframe.DataFrame(start,
                                        start + datetime.timedelta(hours=1))
            for res in resources:
                if res.first_hour <= hour:
                    frame.add_point(res.point(rng), res.type)
            if len(frame):
                yield project_id, frame


def reset_database(path):
    """Remove a previous demo database so that the demo starts empty.

    :param path: the database file.
    :raises ValueError: when ``path`` is not a SQLite file (nor empty), so
        that a mistyped path never destroys another file.
    """
    if os.path.isdir(path):
        raise ValueError('--database %s is a directory' % path)
    if os.path.exists(path):
        with open(path, 'rb') as stream:
            head = stream.read(len(SQLITE_MAGIC))
        if head and head != SQLITE_MAGIC:
            raise ValueError('--database %s exists and is not a SQLite '
                             'file; refusing to replace it' % path)
    for suffix in ('', '-wal', '-shm', '-journal'):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path + suffix)


def next_steps(path, begin, end):
    """Return the commands that read what the demo wrote, one per line.

    :param path: the demo database.
    :param begin: start of the demo month.
    :param end: start of the month after.
    :rtype: list of str
    """
    head = '%s --connection %s' % (main.PROG,
                                   shlex.quote(main.sqlite_url(path)))
    window = '--begin %s --end %s' % (begin.date().isoformat(),
                                      end.date().isoformat())
    return ['%s total %s --groupby project_id' % (head, window),
            '%s total %s --groupby type,time-d --all' % (head, window),
            '%s retrieve %s --limit 10' % (head, window)]


class Demo(rst.PlainHelp, report.ExactSortLister):
    """Fill a SQLite file with a month of demo data and show its totals.

    The file (``cloudkitty-demo.sqlite`` in the working directory unless
    ``--database`` says otherwise) is recreated on every run, so running
    the demo twice never doubles the data. The demo always uses the
    embedded SQLite backend and ignores the configuration files and the
    global ``--backend``/``--connection`` options. It prints the month's
    totals by project and type; qty and rate are exact decimal strings.
    It ends with the commands that explore what it wrote (on stderr): the
    other commands read ``./cloudkitty-storage.sqlite`` over the current
    month unless told otherwise.
    """

    numeric_columns = ('qty', 'rate')

    def get_parser(self, prog_name):
        """Return the parser of ``demo``'s own options.

        :rtype: argparse.ArgumentParser
        """
        parser = super().get_parser(prog_name)
        parser.add_argument(
            '--database', metavar='PATH', default=DEFAULT_DATABASE,
            help='SQLite file to (re)create (default: %s in the working '
                 'directory).' % DEFAULT_DATABASE)
        parser.add_argument(
            '--month', type=_month, default=None, metavar='YYYY-MM',
            help='UTC month to generate (default: the previous month).')
        return parser

    def take_action(self, parsed_args):
        """Create the database, push the month and total it.

        :returns: ``(('project_id', 'type', 'qty', 'rate'), rows)``.
        """
        begin = parsed_args.month or previous_month()
        end = query.next_month(begin)
        path = parsed_args.database
        reset_database(path)
        # NOTE: a fresh conf: the demo must not depend on a config file.
        conf = main.make_conf()
        store = main.load_storage(conf, backend='sqlalchemy',
                                  connection=main.sqlite_url(path),
                                  create=True)
        points = pushes = 0
        for project_id, frame in generate(begin):
            store.push([frame], scope_id=project_id)
            points += len(frame)
            pushes += 1
        LOG.info('Pushed %d points in %d pushes for %s into %s',
                 points, pushes, begin.strftime('%Y-%m'), path)
        answer = store.total(groupby=['project_id', 'type'], begin=begin,
                             end=end, paginate=False)
        store.close()
        self._next_steps = next_steps(path, begin, end)
        rows = [(row['project_id'], row['type'], str(row['qty']),
                 str(row['rate'])) for row in answer['results']]
        return ('project_id', 'type', 'qty', 'rate'), rows

    def produce_output(self, parsed_args, column_names, data):
        """Print the totals, then the commands to explore them (stderr).

        :returns: cliff's exit code.
        """
        code = super().produce_output(parsed_args, column_names, data)
        self.app.stderr.write(
            'Explore the demo data (other commands read '
            './cloudkitty-storage.sqlite over the current month unless '
            'told otherwise):\n' + ''.join(
                '  %s\n' % line for line in self._next_steps))
        return code
