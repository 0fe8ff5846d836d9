"""Sum the totals of every stestr run in a log into one closing line."""

import re
import sys


def main(path):
    counts = {'Passed': 0, 'Failed': 0, 'Skipped': 0,
              'Expected Fail': 0, 'Unexpected Success': 0}
    pattern = re.compile(r'^ - (%s): (\d+)$' % '|'.join(counts))
    with open(path, encoding='utf-8', errors='replace') as log:
        for line in log:
            match = pattern.match(line.rstrip())
            if match:
                counts[match.group(1)] += int(match.group(2))
    # NOTE: an expected failure is a pass of the suite's bookkeeping, an
    # unexpected success a failure of it.
    passed = counts['Passed'] + counts['Expected Fail']
    failed = counts['Failed'] + counts['Unexpected Success']
    print('%d passed, %d failed, %d skipped'
          % (passed, failed, counts['Skipped']))


if __name__ == '__main__':
    main(sys.argv[1])
