#!/usr/bin/env python3
"""Word count reducer for Hadoop Streaming.

Input arrives sorted by key, one "word<TAB>count" line per record, so all
lines of a word are adjacent; the reducer sums them and prints the total
when the word changes. It also works as the combiner.
"""
import sys

current_word = None
current_count = 0

for line in sys.stdin:
    word, _, count = line.rstrip("\n").partition("\t")
    try:
        count = int(count)
    except ValueError:
        continue  # not a count; skip the line
    if word == current_word:
        current_count += count
        continue
    if current_word is not None:
        print(f"{current_word}\t{current_count}")
    current_word, current_count = word, count

if current_word is not None:
    print(f"{current_word}\t{current_count}")
