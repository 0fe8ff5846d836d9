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
"""The picture of ``cloudkitty-storage bench --plot``.

matplotlib is an optional dependency (``pip install
"cloudkitty-storage[plot]"``): it is imported only to draw, and the figure
is a plain :class:`matplotlib.figure.Figure` written by the Agg renderer,
without pyplot, so that no display and no process-wide backend is ever
involved.

Every panel has the number of points stored on a log x axis:

* left, on a log y axis, the latency of each query in seconds: one colour
  per query, one line style (and marker) per backend;
* top right, the push throughput in points per second;
* bottom right, on a log y axis, the size of the database in MiB.
"""

import collections

#: What to run when matplotlib is missing.
INSTALL_HINT = 'pip install "cloudkitty-storage[plot]"'
#: ``(line style, marker)`` of the first, second... backend.
LINE_STYLES = (('-', 'o'), ('--', 's'), (':', '^'), ('-.', 'D'))
#: Resolution of raster formats (PNG).
DPI = 120


class Series(collections.namedtuple('Series', 'name latency push size')):
    """The figures of one backend, each a list of ``(points, value)``.

    :ivar name: the backend's name in the legend.
    :ivar latency: ``{query: [(points, seconds)]}``.
    :ivar push: ``[(points, points per second)]``.
    :ivar size: ``[(points, MiB)]``; empty when the size is not known.
    """

    __slots__ = ()


class PlotUnavailable(RuntimeError):
    """matplotlib, which drawing needs, is not installed."""


def require_matplotlib():
    """Import matplotlib's Figure class, or say what to install.

    Called before a benchmark starts too, so that a long run never ends
    without its picture.

    :returns: :class:`matplotlib.figure.Figure`.
    :raises PlotUnavailable: when matplotlib cannot be imported; the
        message names :data:`INSTALL_HINT`.
    """
    try:
        from matplotlib import figure
    except ImportError as exc:
        raise PlotUnavailable(
            'drawing needs matplotlib, which is not installed: %s (%s)'
            % (INSTALL_HINT, exc)) from None
    return figure.Figure


def _loglog(pairs):
    """Sort ``(x, y)`` pairs, without those a log scale cannot show."""
    return sorted((x, y) for x, y in pairs if x > 0 and y > 0)


def draw(path, series, queries, title, subtitle=''):
    """Draw the figures of one or more backends into ``path``.

    :param path: the file to write; its extension picks the format
        (``.png``, ``.svg``, ``.pdf``...).
    :type path: str
    :param series: one :class:`Series` per backend.
    :type series: list
    :param queries: the queries to draw, in legend order.
    :type queries: list of str
    :param title: the title of the figure.
    :type title: str
    :param subtitle: a second, smaller line under the title.
    :type subtitle: str
    :raises PlotUnavailable: when matplotlib is not installed.
    """
    figure_class = require_matplotlib()
    import matplotlib
    from matplotlib import lines

    figure = figure_class(figsize=(14, 8), layout='constrained')
    grid = figure.add_gridspec(2, 2, width_ratios=(2, 1))
    latency = figure.add_subplot(grid[:, 0])
    push = figure.add_subplot(grid[0, 1])
    size = figure.add_subplot(grid[1, 1])
    # NOTE: ten distinct colours hold today's queries; tab20 more.
    palette = matplotlib.colormaps['tab10' if len(queries) <= 10
                                   else 'tab20'].colors

    def color(index):
        return palette[index % len(palette)]

    backends = []
    for number, one in enumerate(series):
        style, marker = LINE_STYLES[number % len(LINE_STYLES)]
        look = dict(linestyle=style, marker=marker, markersize=4)
        for index, query in enumerate(queries):
            pairs = _loglog(one.latency.get(query, ()))
            if pairs:
                latency.plot(*zip(*pairs), color=color(index), **look)
        pairs = sorted(pair for pair in one.push if pair[0] > 0)
        if pairs:
            push.plot(*zip(*pairs), color='black', label=one.name, **look)
        pairs = _loglog(one.size)
        if pairs:
            size.plot(*zip(*pairs), color='black', label=one.name, **look)
        backends.append(lines.Line2D([], [], color='black', label=one.name,
                                     **look))

    latency.set(xscale='log', yscale='log', xlabel='points stored',
                ylabel='latency (s)', title='Queries')
    latency.grid(True, which='both', alpha=0.3)
    legend = latency.legend(
        handles=[lines.Line2D([], [], color=color(index), label=query)
                 for index, query in enumerate(queries)],
        loc='upper left', fontsize='small', title='query')
    if len(series) > 1:
        # NOTE: a second legend replaces the first unless it is re-added.
        latency.add_artist(legend)
        latency.legend(handles=backends, loc='lower right',
                       fontsize='small', title='backend')

    push.set(xscale='log', xlabel='points stored',
             ylabel='push (points/s)', title='Push throughput')
    push.set_ylim(bottom=0)
    push.grid(True, which='both', alpha=0.3)
    if push.lines:
        push.legend(fontsize='small')

    size.set(xscale='log', xlabel='points stored',
             ylabel='database size (MiB)', title='Database size')
    size.grid(True, which='both', alpha=0.3)
    if size.lines:
        size.set_yscale('log')
        size.legend(fontsize='small')
    else:
        size.text(0.5, 0.5, 'not measured for this backend',
                  ha='center', va='center', transform=size.transAxes)

    figure.suptitle(title + ('\n' + subtitle if subtitle else ''))
    figure.savefig(path, dpi=DPI)
