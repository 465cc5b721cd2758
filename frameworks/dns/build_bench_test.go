package dns

import "testing"

// BenchmarkBuild10000 is the cost of rebuilding the records of 10,000
// running tasks, which every change pays.
func BenchmarkBuild10000(b *testing.B) {
	cfg := testConfig(deadMaster)
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	v := fakeView("app", 10000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		build(&cfg, v, nil, nil)
	}
}
