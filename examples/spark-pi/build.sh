#!/bin/sh
# build.sh — builds the SparkPi example with Maven into the cache (never into
# the repository) and prints the jar's path:
#
#   jar=$(examples/spark-pi/build.sh)
#
# The cache is $AGORA_SPARK_PI_DIR, else ~/.cache/agora/spark-pi. Spark is
# a provided dependency: the jar holds only the example's class.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${AGORA_SPARK_PI_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/agora/spark-pi}/build
mvn -B -q --no-transfer-progress -f "$here/pom.xml" -DbuildDir="$out" package >&2
echo "$out/spark-pi.jar"
