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
"""``backends``, ``init`` and ``purge``: looking after a store."""

import datetime
import decimal

from cliff import lister
from cliff import show
from oslo_log import log
from stevedore import extension

from cloudkitty.cli import data
from cloudkitty.cli import report
from cloudkitty.cli import rst
from cloudkitty import storage
from cloudkitty.storage import v2

LOG = log.getLogger(__name__)

#: The capability flags of :class:`cloudkitty.storage.v2.Features`, in the
#: order they are declared; ``backends`` prints one column each.
FEATURE_FLAGS = tuple(name for name in vars(v2.Features)
                      if not name.startswith('_'))


def _flag_cell(value):
    """A flag as a cell: a Decimal (a tolerance) as its exact text."""
    return str(value) if isinstance(value, decimal.Decimal) else value


class Backends(rst.PlainHelp, lister.Lister):
    """List the installed storage backends and their capabilities.

    Backends are the entry points of the ``cloudkitty.storage.v2.backends``
    namespace; their classes are imported but not instantiated, so no
    server is contacted. One column per capability flag (see
    :class:`cloudkitty.storage.v2.Features`) shows what each backend
    declares.
    """

    def take_action(self, parsed_args):
        """List the backends.

        :returns: ``(('name', 'module:class', <flags>...), rows)``.
        """
        manager = extension.ExtensionManager(
            storage.BACKENDS_NAMESPACE, invoke_on_load=False)
        rows = []
        for ext in sorted(manager, key=lambda ext: ext.name):
            features = getattr(ext.plugin, 'features', v2.Features)
            rows.append((ext.name, ext.entry_point.value)
                        + tuple(_flag_cell(getattr(features, flag, None))
                                for flag in FEATURE_FLAGS))
        return ('name', 'module:class') + FEATURE_FLAGS, rows


def _location(store):
    """Where the store keeps its data (password hidden), if it says."""
    return getattr(store, 'location', None) or '(not reported)'


class Init(rst.PlainHelp, show.ShowOne):
    """Create or upgrade the configured backend's schema; idempotent.

    Prints the backend and its location (for SQL, the database URL with
    the password hidden). Running it again changes nothing.
    """

    def take_action(self, parsed_args):
        """Build and initialise the configured backend.

        :returns: ``(('backend', 'class', 'location'), values)``.
        """
        with self.app.opened_storage(create=True) as store:
            cls = type(store)
            return (('backend', 'class', 'location'),
                    (store.name, '%s:%s' % (cls.__module__, cls.__name__),
                     _location(store)))


class Purge(rst.PlainHelp, show.ShowOne):
    """Delete rated data older than ``[storage] retention_period``.

    Deletes every point whose frame starts before now minus the retention
    period (in hours, 2400 by default). ``--dry-run`` only counts them.
    Unless ``--yes`` is given it asks on stdin first, like ``delete``;
    declining deletes nothing and exits with 1.
    """

    def get_parser(self, prog_name):
        """Return the parser of ``purge``'s own options.

        :rtype: argparse.ArgumentParser
        """
        parser = super().get_parser(prog_name)
        parser.add_argument(
            '--dry-run', action='store_true',
            help='Print the cutoff and how many points would be deleted; '
                 'delete nothing.')
        parser.add_argument(
            '--yes', '-y', action='store_true',
            help='Do not ask for confirmation.')
        return parser

    def take_action(self, parsed_args):
        """Count (dry run), or confirm and delete, what is too old.

        :returns: ``cutoff``, ``retention_hours`` and ``would_delete``
            (dry run) or ``deleted``.
        :raises cloudkitty.cli.data.Aborted: when the confirmation is
            declined.
        """
        with self.app.opened_storage() as store:
            retention = store.get_retention()
            now = datetime.datetime.now(data.UTC).replace(microsecond=0)
            cutoff = now - retention
            hours = retention // datetime.timedelta(hours=1)
            if parsed_args.dry_run:
                count = data.count_points(store, end=cutoff)
                return (('cutoff', 'retention_hours', 'would_delete'),
                        (cutoff.isoformat(), hours, count))
            if not parsed_args.yes:
                count = data.count_points(store, end=cutoff)
                if not count:
                    LOG.info('No point older than %s', cutoff.isoformat())
                    return (('cutoff', 'retention_hours', 'deleted'),
                            (cutoff.isoformat(), hours, 0))
                question = 'Delete %s %s? [y/N] ' % (
                    report.plural(count, 'point'),
                    data.describe_window(None, cutoff))
                if not data.confirm(self.app, question):
                    raise data.Aborted('Aborted: nothing was deleted')
            deleted = store.delete(end=cutoff)
        LOG.info('Purged %s older than %s', report.plural(deleted, 'point'),
                 cutoff.isoformat())
        return (('cutoff', 'retention_hours', 'deleted'),
                (cutoff.isoformat(), hours, deleted))
