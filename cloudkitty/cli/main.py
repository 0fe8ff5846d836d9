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
"""The ``cloudkitty-storage`` command: a cliff application.

Commands are plugins of the ``cloudkitty.storage.cli`` entry-point
namespace (see ``setup.cfg``), one module per command. Global options::

    cloudkitty-storage [--config-file PATH]... [--config-dir DIR]...
                       [--backend NAME] [--connection URL]
                       [--debug] [-q | -v] [--log-file PATH]
                       COMMAND [ARGS]

Configuration is read with oslo.config into a fresh
:class:`oslo_config.cfg.ConfigOpts` per run, from the ``--config-file`` and
``--config-dir`` given only (no file is looked up implicitly); a missing
file or directory is an error. Logging goes through oslo.log to stderr,
warnings and errors only unless ``-v`` is given or the command reports the
progress of long work (``migrate``, ``bench``, ``load``). Without
``--debug`` an error is reported as one line on stderr and the exit code
is non-zero; ``--debug`` adds the traceback and debug messages.

Only the commands that write (``init``, ``push``, ``demo``, ``bench``,
``load`` and ``migrate``'s destination) may create a store: the others
open it with ``create=False`` and fail, naming it, when it does not exist.
"""

import contextlib
from importlib import metadata
import logging
import os
import sys

from cliff import app
from cliff import commandmanager
from cliff import help as cliff_help
from oslo_config import cfg
from oslo_log import log

from cloudkitty import storage
from cloudkitty.storage import exceptions
from cloudkitty.storage import options as storage_options

#: The program name, used in the usage line and in messages.
PROG = 'cloudkitty-storage'
#: The entry-point namespace of the commands.
COMMANDS_NAMESPACE = 'cloudkitty.storage.cli'

LOG = log.getLogger(__name__)

_SHORT_LOG_FORMAT = '%(levelname)s %(name)s %(message)s'
# NOTE: stevedore warns about a missing backend name, which
# BackendNotFound reports better; it logs real load failures as errors.
_QUIET_LIBRARIES = ('stevedore=ERROR', 'cliff=WARN', 'alembic=WARN',
                    'sqlalchemy=WARN', 'autopage=WARN')


def _is_console(handler):
    """Whether a logging handler writes to a stream but not to a file."""
    return (isinstance(handler, logging.StreamHandler)
            and not isinstance(handler, logging.FileHandler))


class NoStore(exceptions.StorageError):
    """A command that only reads found no initialised store there."""


def _version():
    """Return the installed version of the distribution, if known."""
    try:
        return metadata.version('cloudkitty-storage')
    except metadata.PackageNotFoundError:
        # NOTE: a source checkout that was never installed.
        return 'unknown'


def make_conf(config_files=(), config_dirs=()):
    """Return a new conf holding the storage and logging options.

    :param config_files: paths of configuration files, read in order.
    :type config_files: list of str
    :param config_dirs: directories whose ``*.conf`` files are read.
    :type config_dirs: list of str
    :returns: the parsed conf; no command-line argument is read.
    :rtype: oslo_config.cfg.ConfigOpts
    :raises oslo_config.cfg.ConfigFilesNotFoundError: for a missing file.
    :raises oslo_config.cfg.ConfigDirNotFoundError: for a missing
        directory (oslo.config itself would skip it).
    """
    for directory in config_dirs or ():
        if not os.path.isdir(directory):
            raise cfg.ConfigDirNotFoundError(directory)
    conf = cfg.ConfigOpts()
    log.register_options(conf)
    storage_options.register_opts(conf)
    conf.set_default('use_stderr', True)
    # NOTE: [storage] backend defaults to upstream CloudKitty's influxdb,
    # which needs a server; this command's own default is the embedded
    # store (a SQLite file), as its documentation says.
    conf.set_default('backend', 'sqlalchemy', group='storage')
    conf(args=[], project='cloudkitty', prog=PROG,
         default_config_files=list(config_files or ()),
         default_config_dirs=list(config_dirs or ()))
    return conf


def register_backend_opts(conf):
    """Register every option of :func:`cloudkitty.storage.list_opts`.

    Backends register their own options when loaded; the CLI needs them
    earlier, to apply ``--connection`` before the backend is built.
    """
    for group, opts in storage.list_opts():
        conf.register_opts(opts, group=group)


def require_initialised(store):
    """Check that ``store`` exists and was initialised; create nothing.

    A backend without ``check_initialised()`` cannot tell: it is used as
    it is, and a read fails however the backend fails.

    :raises NoStore: naming the store, when it is missing.
    """
    check = getattr(store, 'check_initialised', None)
    if check is None:
        LOG.debug('Backend %s cannot tell whether its store exists',
                  store.name)
        return
    try:
        check()
    except exceptions.NotInitialised as exc:
        raise NoStore('%s; nothing was created (cloudkitty-storage init '
                      'creates it)' % exc) from exc


def load_storage(conf, backend=None, connection=None, create=False):
    """Build the storage backend of ``conf``; initialise it if allowed.

    :param conf: the conf to read; overrides are applied to it.
    :type conf: oslo_config.cfg.ConfigOpts
    :param backend: overrides ``[storage] backend`` when not None.
    :type backend: str
    :param connection: overrides the ``connection`` option of the
        backend's ``[storage_<backend>]`` group when not None.
    :type connection: str
    :param create: True to create or upgrade the store (``init()``);
        False (reads) to check that it exists and create nothing.
    :type create: bool
    :returns: the backend, ready to use.
    :rtype: cloudkitty.storage.v2.BaseStorage
    :raises ValueError: when ``connection`` is given for a backend that has
        no ``connection`` option.
    :raises NoStore: without ``create``, when the store does not exist.
    :raises cloudkitty.storage.exceptions.StorageError: when the backend
        cannot be found or reached.
    """
    if backend is not None:
        conf.set_override('backend', backend, group='storage')
    name = conf.storage.backend
    # NOTE: for an unknown backend, get_storage() raises BackendNotFound,
    # which says more than a complaint about --connection.
    if connection is not None and name in storage.available_backends():
        register_backend_opts(conf)
        group = 'storage_%s' % name
        try:
            conf.set_override('connection', connection, group=group)
        except (cfg.NoSuchOptError, cfg.NoSuchGroupError):
            raise ValueError(
                '--connection does not apply to storage backend %r: it has '
                'no [%s] connection option' % (name, group)) from None
    store = storage.get_storage(conf)
    try:
        if create:
            store.init()
        else:
            require_initialised(store)
    except BaseException:
        store.close()
        raise
    return store


def describe_store(store):
    """Name a store in figures: its backend and its location's scheme.

    Only the scheme of the location is kept (``sqlalchemy (sqlite)``,
    ``influxdb (http)``): figures are shared, and the rest of a location
    names a host or a file. The location itself comes from
    :meth:`cloudkitty.storage.v2.BaseStorage.describe`, without password.

    :rtype: str
    """
    name = store.name or store.conf.storage.backend
    location = store.describe().location
    if location and '://' in location:
        return '%s (%s)' % (name, location.split('://', 1)[0])
    return name


def sqlite_url(path):
    """Return the SQLAlchemy URL of a SQLite file (made absolute).

    :param path: the file path.
    :type path: str
    :rtype: str
    """
    return 'sqlite:///' + os.path.abspath(path)


class StorageApp(app.App):
    """The ``cloudkitty-storage`` application.

    :ivar conf: the :class:`oslo_config.cfg.ConfigOpts` of this run, built
        from the global options before the command runs.
    """

    NAME = PROG
    LOG = log.getLogger(PROG).logger

    def __init__(self, stdin=None, stdout=None, stderr=None):
        super().__init__(
            description='Store, query and benchmark rated data '
                        '(CloudKitty storage v2).',
            version=_version(),
            command_manager=commandmanager.CommandManager(
                COMMANDS_NAMESPACE),
            stdin=stdin, stdout=stdout, stderr=stderr,
            # NOTE: so that ``COMMAND --help`` shows the command's help,
            # not the application's.
            deferred_help=True)
        self.conf = None

    def build_option_parser(self, description, version,
                            argparse_kwargs=None):
        """Add the configuration and backend options to cliff's own.

        :returns: the global option parser.
        :rtype: argparse.ArgumentParser
        """
        kwargs = dict(argparse_kwargs or {}, prog=PROG)
        parser = super().build_option_parser(description, version, kwargs)
        for action in parser._actions:
            if action.dest == 'version':
                # NOTE: cliff names the program after sys.argv[0], which
                # is "main" under python -m.
                action.version = '%s %s' % (PROG, version)
        parser.add_argument(
            '--config-file', dest='config_files', action='append',
            default=[], metavar='PATH',
            help='Read this configuration file (oslo.config format); may '
                 'be repeated, later files win. None is read by default.')
        parser.add_argument(
            '--config-dir', dest='config_dirs', action='append',
            default=[], metavar='DIR',
            help='Read every file ending in .conf in this directory, after '
                 'the configuration files; may be repeated.')
        parser.add_argument(
            '--backend', metavar='NAME', default=None,
            help='Use this storage backend, overriding [storage] backend '
                 '(default: sqlalchemy).')
        parser.add_argument(
            '--connection', metavar='URL', default=None,
            help='Override the connection option of the backend, e.g. '
                 '[storage_sqlalchemy] connection = '
                 'postgresql+psycopg://user:pass@host/db.')
        return parser

    def configure_logging(self):
        """Read the configuration, then set logging up with oslo.log.

        The console shows warnings and errors only, unless ``-v`` or
        ``--debug`` is given; :meth:`prepare_to_run_command` lets the
        commands that report long work show their progress too.
        """
        root = logging.getLogger()
        handlers = list(root.handlers)
        try:
            self.conf = make_conf(self.options.config_files,
                                  self.options.config_dirs)
        except Exception:
            # NOTE: oslo.log is not set up yet, and a failed parse leaves
            # a bare handler on the root logger (logging's basicConfig);
            # the error must read like every other one, once.
            handler = logging.StreamHandler(self.stderr)
            handler.setFormatter(logging.Formatter(_SHORT_LOG_FORMAT))
            root.handlers[:] = handlers + [handler]
            raise
        if self.options.debug:
            self.conf.set_override('debug', True)
        if self.options.log_file:
            self.conf.set_override('log_file', self.options.log_file)
        levels = list(self.conf.default_log_levels)
        self.conf.set_override('default_log_levels',
                               levels + list(_QUIET_LIBRARIES))
        log.setup(self.conf, PROG, version=_version(), fix_eventlet=False)
        root = logging.getLogger()
        self._set_levels()
        if not self.options.debug:
            # NOTE: oslo.log's console format carries a timestamp, a pid
            # and a summary of the exception being handled; without
            # --debug an error must read as one short line.
            for handler in root.handlers:
                if _is_console(handler):
                    handler.setFormatter(
                        logging.Formatter(_SHORT_LOG_FORMAT))

    def _set_levels(self, cmd=None):
        """Apply :meth:`_console_level` to the console.

        With ``--log-file``, the file still gets the INFO messages: the
        root logger lets them through and only the console handlers
        filter them.
        """
        root = logging.getLogger()
        console = self._console_level(cmd)
        if not self.options.log_file:
            root.setLevel(console)
            return
        root.setLevel(min(console, logging.INFO))
        for handler in root.handlers:
            if _is_console(handler):
                handler.setLevel(console)

    def _console_level(self, cmd=None):
        """The level of the root logger while ``cmd`` runs.

        Like openstackclient: warnings by default, ``-v`` adds the INFO
        messages, ``--debug`` everything. A command whose
        ``progress_logs`` is true (long work, reported as it goes) shows
        its INFO messages unless ``-q``.
        """
        if self.options.debug:
            return logging.DEBUG
        verbose = self.options.verbose_level
        if verbose >= 2 or (verbose == 1 and
                            getattr(cmd, 'progress_logs', False)):
            return logging.INFO
        return logging.WARNING

    def prepare_to_run_command(self, cmd):
        """Set the console level the command wants (see _console_level)."""
        self._set_levels(cmd)

    def uses_configured_backend(self):
        """Whether the user chose a backend through the global options.

        :returns: True when ``--config-file``, ``--config-dir``,
            ``--backend`` or ``--connection`` was given.
        :rtype: bool
        """
        opts = self.options
        return bool(opts.config_files or opts.config_dirs
                    or opts.backend or opts.connection)

    def get_storage(self, create=False):
        """Build the backend of this run's configuration.

        :param create: True for the commands that may create the store
            (see :func:`load_storage`); reads leave it False.
        :rtype: cloudkitty.storage.v2.BaseStorage
        :raises NoStore: without ``create``, when the store is missing.
        """
        return load_storage(self.conf, backend=self.options.backend,
                            connection=self.options.connection,
                            create=create)

    @contextlib.contextmanager
    def opened_storage(self, create=False):
        """:meth:`get_storage`, closed again when the block ends.

        :returns: a context manager yielding the backend.
        """
        store = self.get_storage(create=create)
        try:
            yield store
        finally:
            store.close()

    def interact(self):
        """Print the help: this application has no interactive shell."""
        action = cliff_help.HelpAction(None, None, default=self)
        try:
            action(self.parser, self.options, None, None)
        except cliff_help.HelpExit:
            pass


def _exit_code(exc):
    """Turn a SystemExit into an exit code, like the interpreter does."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    return 1


def main(argv=None, stdin=None, stdout=None, stderr=None):
    """Run ``cloudkitty-storage`` and return its exit code.

    :param argv: the arguments, without the program name; defaults to
        ``sys.argv[1:]``.
    :type argv: list of str
    :param stdin: input stream (default ``sys.stdin``).
    :param stdout: output stream for results (default ``sys.stdout``).
    :param stderr: stream for errors (default ``sys.stderr``).
    :returns: 0 on success, non-zero on error.
    :rtype: int
    """
    if argv is None:
        argv = sys.argv[1:]
    application = StorageApp(stdin=stdin, stdout=stdout, stderr=stderr)
    try:
        return application.run(list(argv))
    except SystemExit as exc:
        # NOTE: argparse exits on bad arguments and on --help; a caller
        # such as a test gets the code instead of an exit.
        return _exit_code(exc)


if __name__ == '__main__':
    sys.exit(main())
