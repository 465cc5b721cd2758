package partition

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// Expected values worked out by hand from WritableComparator.hashBytes
// (h = 31*h + (int)b, bytes signed, starting at 1).
func TestHashMatchesJavaText(t *testing.T) {
	// Text.hashCode of "" is 1; of "a" is 31+97 = 128; "ab" = 31*128+98.
	for _, c := range []struct {
		key  string
		want int32
	}{{"", 1}, {"a", 128}, {"ab", 4066}, {"\xff", 31 - 1}} {
		if got := HashCode([]byte(c.key)); got != c.want {
			t.Errorf("HashCode(%q) = %d, want %d", c.key, got, c.want)
		}
	}
	// A long key overflows like Java's int arithmetic: h stays in int32.
	long := bytes.Repeat([]byte("zz"), 50)
	h := int64(1)
	for _, b := range long {
		h = int64(int32(31*h + int64(int8(b))))
	}
	if HashCode(long) != int32(h) {
		t.Fatal("overflow differs from 32-bit arithmetic")
	}
	for n := 1; n < 7; n++ {
		p := Hash{}.Partition(long, n)
		if p < 0 || p >= n {
			t.Fatalf("partition %d of %d", p, n)
		}
	}
}

func TestTotalOrderRangesAreSortedAndComplete(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var keys [][]byte
	for i := 0; i < 5000; i++ {
		keys = append(keys, []byte(fmt.Sprintf("%06d", rng.IntN(100000))))
	}
	sample := make([][]byte, 0, 500)
	for i := 0; i < 500; i++ {
		sample = append(sample, keys[rng.IntN(len(keys))])
	}
	const n = 7
	points := PickPoints(sample, n)
	if len(points) != n-1 {
		t.Fatalf("%d points for %d partitions", len(points), n)
	}
	for i := 1; i < len(points); i++ {
		if bytes.Compare(points[i-1], points[i]) >= 0 {
			t.Fatalf("points not strictly increasing: %q", points)
		}
	}
	to := TotalOrder{Points: points}
	// Every key of partition i is below every key of partition i+1.
	maxOf := make([][]byte, n)
	minOf := make([][]byte, n)
	counts := make([]int, n)
	for _, k := range keys {
		p := to.Partition(k, n)
		counts[p]++
		if maxOf[p] == nil || bytes.Compare(k, maxOf[p]) > 0 {
			maxOf[p] = k
		}
		if minOf[p] == nil || bytes.Compare(k, minOf[p]) < 0 {
			minOf[p] = k
		}
	}
	for i := 0; i+1 < n; i++ {
		if counts[i] == 0 || counts[i+1] == 0 {
			t.Fatalf("empty partition: %v", counts)
		}
		if bytes.Compare(maxOf[i], minOf[i+1]) >= 0 {
			t.Fatalf("partition %d max %q >= partition %d min %q", i, maxOf[i], i+1, minOf[i+1])
		}
	}
	// A key equal to a point goes to the partition the point starts.
	if p := to.Partition(points[2], n); p != 3 {
		t.Fatalf("point 2 went to partition %d", p)
	}
}

func TestPickPointsSkipsDuplicates(t *testing.T) {
	var s [][]byte
	for i := 0; i < 90; i++ {
		s = append(s, []byte("a"))
	}
	s = append(s, []byte("b"), []byte("c"))
	points := PickPoints(s, 4)
	for i := 1; i < len(points); i++ {
		if bytes.Compare(points[i-1], points[i]) >= 0 {
			t.Fatalf("duplicate points %q", points)
		}
	}
}
