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
"""Upstream CloudKitty's InfluxStorage, driven over a pipe.

``bench --anchor upstream-influxdb`` runs this file as a script with the
Python of an environment where upstream CloudKitty 25.0.0 is installed
(``pip install cloudkitty==25.0.0``): that ``cloudkitty`` package is
upstream's, so this file imports nothing of this project, only upstream's
code and the standard library, and is never imported by this project.

Usage: ``python -I upstream_driver.py HOST PORT DATABASE``. It creates
the database, builds upstream's ``InfluxStorage`` on it, then reads one
JSON command per line on stdin and writes one JSON answer per line on
stdout:

``{"op": "stage", "frames": [[start, end, [[type, unit, qty, price,
groupby, metadata], ...]], ...]}``
    builds upstream's DataFrames (not timed) for the next ``push``;
``{"op": "push"}``, ``{"op": "total", ...}``, ``{"op": "retrieve", ...}``,
``{"op": "delete", ...}``
    run the call with the command's arguments, after a full garbage
    collection, and answer ``{"seconds": time inside the call, "answer":
    ...}``, values as text (Decimals, datetimes in ISO 8601).

A failure answers ``{"error": "Type: message"}`` and the loop goes on.
"""

import datetime
import decimal
import gc
import json
import sys
import time


def _moment(text):
    """An ISO 8601 text as an aware datetime (None stays None)."""
    if text is None:
        return None
    return datetime.datetime.fromisoformat(text)


def _text(value):
    """A value of an answer as JSON: Decimals and datetimes as text."""
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, float)):
        return str(value)
    return value


def _frames(dataframe, frames):
    """Upstream's DataFrames from the ``stage`` command's lists."""
    result = []
    for start, end, points in frames:
        frame = dataframe.DataFrame(start=_moment(start), end=_moment(end))
        for type_, unit, qty, price, groupby, metadata in points:
            frame.add_point(dataframe.DataPoint(
                unit, decimal.Decimal(qty), decimal.Decimal(price),
                groupby, metadata), type_)
        result.append(frame)
    return result


def _retrieved(answer):
    """A retrieve() answer as lists of text."""
    frames = []
    for frame in answer['dataframes']:
        points = [[type_, point.unit, str(point.qty), str(point.price),
                   dict(point.groupby), dict(point.metadata)]
                  for type_, point in frame.iterpoints()]
        frames.append([frame.start.isoformat(), frame.end.isoformat(),
                       points])
    return {'total': answer['total'], 'frames': frames}


def _totalled(answer):
    """A total() answer with its values as text."""
    return {'total': answer['total'],
            'results': [{key: _text(value) for key, value in row.items()}
                        for row in answer['results']]}


def serve(store, dataframe, lines, out):
    """Answer the commands of ``lines`` on ``out`` until the input ends."""
    staged = []
    for line in lines:
        command = json.loads(line)
        op = command.pop('op')
        try:
            if op == 'stage':
                staged = _frames(dataframe, command['frames'])
                reply = {'seconds': 0.0, 'answer': None}
            else:
                for key in ('begin', 'end'):
                    if key in command:
                        command[key] = _moment(command[key])
                # NOTE: a full collection first, as the benchmark does on
                # its side before each timed call: none owed to earlier
                # work falls inside this one.
                gc.collect()
                start = time.perf_counter()
                if op == 'push':
                    answer = store.push(staged, scope_id=command.get(
                        'scope_id'))
                    staged = []
                elif op == 'total':
                    answer = store.total(**command)
                elif op == 'retrieve':
                    answer = store.retrieve(**command)
                elif op == 'delete':
                    answer = store.delete(**command)
                else:
                    raise ValueError('unknown command %r' % op)
                seconds = time.perf_counter() - start
                if op == 'total':
                    answer = _totalled(answer)
                elif op == 'retrieve':
                    answer = _retrieved(answer)
                reply = {'seconds': seconds, 'answer': answer}
        except Exception as exc:
            reply = {'error': '%s: %s' % (type(exc).__name__, exc)}
        out.write(json.dumps(reply) + '\n')
        out.flush()


def main(argv):
    """Open upstream's InfluxStorage on ``HOST PORT DATABASE``; serve."""
    host, port, database = argv[1], int(argv[2]), argv[3]
    import influxdb
    from oslo_config import cfg

    from cloudkitty import dataframe
    from cloudkitty.storage.v2 import influx

    client = influxdb.InfluxDBClient(host=host, port=port)
    client.create_database(database)
    client.close()
    cfg.CONF([], project='cloudkitty')
    for name, value in (('host', host), ('port', port),
                        ('database', database)):
        cfg.CONF.set_override(name, value, group='storage_influxdb')
    store = influx.InfluxStorage()
    store.init()
    # NOTE: one line saying it is ready, so that a failed start is seen
    # before the first command.
    sys.stdout.write(json.dumps({'ready': True}) + '\n')
    sys.stdout.flush()
    serve(store, dataframe, sys.stdin, sys.stdout)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
