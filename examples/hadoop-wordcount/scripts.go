// Package wordcount holds the word count example's Streaming scripts, so
// that programs (the `agora bench hadoop wordcount` benchmark) can write
// them out and run them.
package wordcount

import _ "embed"

// Mapper is mapper.py: one "word<TAB>1" line per word of its input.
//
//go:embed mapper.py
var Mapper []byte

// Reducer is reducer.py: the sum of each word's counts; it also serves as
// the combiner.
//
//go:embed reducer.py
var Reducer []byte
