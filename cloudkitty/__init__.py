"""The ``cloudkitty`` package: rated-data storage, shared with CloudKitty.

This library and upstream CloudKitty both install this package. The
version is upstream's when it is installed (its ``__version__``, which
this file replaces), else this library's.
"""

from importlib import metadata


def _version():
    for distribution in ('cloudkitty', 'cloudkitty-storage'):
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return 'unknown'


__version__ = _version()
