"""Word count in PySpark: the words of the input files (lower case, runs
of letters, digits and apostrophes), counted in a shuffle and printed as
"word<TAB>count" lines sorted by word, then a "total<TAB>N" line.

    spark-submit [--master ...] wordcount.py INPUT [INPUT ...] [--partitions N]

Knows nothing about agora: any master spark-submit accepts runs it.
"""
import re
import sys

from pyspark import SparkConf, SparkContext

WORD = re.compile(r"[a-z0-9']+")


def words(line):
    return WORD.findall(line.lower())


def main(argv):
    args, parts = [], 4
    it = iter(argv)
    for a in it:
        if a == "--partitions":
            parts = int(next(it))
        else:
            args.append(a)
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    sc = SparkContext(conf=SparkConf().setAppName("PySpark Word Count"))
    try:
        counts = (sc.textFile(",".join(args), parts)
                  .flatMap(words)
                  .map(lambda w: (w, 1))
                  .reduceByKey(lambda a, b: a + b, parts)
                  .collect())
    finally:
        sc.stop()
    total = 0
    for w, n in sorted(counts):
        print("%s\t%d" % (w, n))
        total += n
    print("total\t%d" % total)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
