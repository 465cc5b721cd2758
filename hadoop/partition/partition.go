// Package partition decides which reduce task receives a map output key:
// Hadoop's HashPartitioner (on the key's bytes, as Text.hashCode computes
// it) and TotalOrderPartitioner (ranges between sorted split points, so the
// concatenated reduce outputs are globally sorted), plus the choice of split
// points from a sample of keys.
package partition

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Class names, as Streaming's -partitioner takes them.
const (
	HashName       = "org.apache.hadoop.mapred.lib.HashPartitioner"
	TotalOrderName = "org.apache.hadoop.mapred.lib.TotalOrderPartitioner"
)

// Name returns the canonical class name of a partitioner ("" means the
// hash partitioner), accepting old-API, new-API and simple names.
func Name(s string) (string, error) {
	simple := s[strings.LastIndexByte(s, '.')+1:]
	switch {
	case s == "" || simple == "HashPartitioner":
		return HashName, nil
	case simple == "TotalOrderPartitioner":
		return TotalOrderName, nil
	}
	return "", fmt.Errorf("partitioner %s is not supported (supported: HashPartitioner, TotalOrderPartitioner)", s)
}

// Partitioner maps a key to one of n partitions.
type Partitioner interface {
	Partition(key []byte, n int) int
}

// Hash is HashPartitioner over Text keys:
// (hashCode & Integer.MAX_VALUE) % n, with Text's hashCode.
type Hash struct{}

// HashCode is WritableComparator.hashBytes, Text's hashCode: 31*h + b over
// the key's bytes taken as signed Java bytes, starting from 1, in 32-bit
// two's-complement arithmetic.
func HashCode(key []byte) int32 {
	h := int32(1)
	for _, b := range key {
		h = 31*h + int32(int8(b))
	}
	return h
}

func (Hash) Partition(key []byte, n int) int {
	return int(HashCode(key)&0x7fffffff) % n
}

// TotalOrder is TotalOrderPartitioner: Points are n-1 sorted keys; a key
// goes to the partition numbered by how many points are less than or equal
// to it, so partition i holds [Points[i-1], Points[i]).
type TotalOrder struct {
	Points [][]byte
}

func (t TotalOrder) Partition(key []byte, n int) int {
	p := sort.Search(len(t.Points), func(i int) bool { return bytes.Compare(t.Points[i], key) > 0 })
	return min(p, n-1)
}

// PickPoints chooses up to n-1 split points from a sample of keys, as
// Hadoop's InputSampler.writePartitionFile does: evenly spaced through the
// sorted sample, skipping over runs of equal keys so the points are
// strictly increasing. samples is sorted in place.
func PickPoints(samples [][]byte, n int) [][]byte {
	if n <= 1 || len(samples) == 0 {
		return nil
	}
	slices.SortFunc(samples, bytes.Compare)
	step := float64(len(samples)) / float64(n)
	var out [][]byte
	last := -1
	for i := 1; i < n; i++ {
		k := max(int(step*float64(i)+0.5), last+1)
		for last >= 0 && k < len(samples) && bytes.Equal(samples[last], samples[k]) {
			k++
		}
		if k >= len(samples) {
			break
		}
		out = append(out, bytes.Clone(samples[k]))
		last = k
	}
	return out
}
