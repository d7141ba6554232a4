"""Reads an interval log written by `memtrace report --hlog` with Python's `hdrh` (PyPI:
hdrhistogram), a reader independent of the Rust crate that wrote it, and prints as JSON the
log's start time and, per tag, the entries, the total count and the highest value.

Usage: python3 hlog_totals.py FILE (run by memtrace's test `python_hdrh_reads_the_same_totals`).
"""
import json
import sys

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader


def main(path):
    # The reference histogram is only used to add intervals up, which this does not do.
    reader = HistogramLogReader(path, HdrHistogram(1, 3600 * 10**9, 3))
    tags = {}
    while True:
        histogram = reader.get_next_interval_histogram()
        if histogram is None:
            break
        totals = tags.setdefault(histogram.get_tag(), {"entries": 0, "count": 0, "max_ns": 0})
        totals["entries"] += 1
        totals["count"] += histogram.get_total_count()
        totals["max_ns"] = max(totals["max_ns"], histogram.get_max_value())
    print(json.dumps({"start_time_sec": reader.get_start_time_sec(), "tags": tags}))


if __name__ == "__main__":
    main(sys.argv[1])
