package wordcount

import (
	"maps"
	"testing"
)

// Count splits as the script does; Parse reads Output back from among
// log lines and checks the total.
func TestCountOutputParse(t *testing.T) {
	c := Count("It's the THE the, 42\nx-ray\t\n")
	want := map[string]int{"it's": 1, "the": 3, "42": 1, "x": 1, "ray": 1}
	if !maps.Equal(c, want) {
		t.Fatalf("Count = %v; want %v", c, want)
	}
	out := "26/12/04 INFO SparkContext: Running Spark\n" + Output(c) + "26/12/04 INFO done\n"
	got, ok := Parse(out)
	if !ok || !maps.Equal(got, want) {
		t.Errorf("Parse = %v, %v; want %v, true", got, ok, want)
	}
	if _, ok := Parse("the\t3\ntotal\t4\n"); ok {
		t.Error("a total that is not the sum of the counts was taken")
	}
	if _, ok := Parse("the\t3\n"); ok {
		t.Error("output without its total line was taken")
	}
	if n := len(Count(string(Input))); n == 0 {
		t.Error("input.txt has no words")
	}
}
