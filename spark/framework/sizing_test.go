package framework

import (
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func TestSizingFrom(t *testing.T) {
	for _, tc := range []struct {
		name string
		conf map[string]string
		want Sizing
	}{
		{"defaults", nil, Sizing{HeapMB: 1024, MemMB: 1024 + 384, Instances: -1, RejectFor: 120 * time.Second}},
		{"10% overhead above 3840 MB", map[string]string{"spark.executor.memory": "8g", "spark.executor.cores": "2", "spark.cores.max": "6"},
			Sizing{Cores: 2, CoresMax: 6, HeapMB: 8192, MemMB: 8192 + 820, Instances: -1, RejectFor: 120 * time.Second}},
		{"explicit overhead, factor, instances", map[string]string{"spark.executor.memory": "2048", "spark.executor.memoryOverhead": "1g", "spark.executor.instances": "3",
			"spark.mesos.rejectOfferDuration": "30s", "spark.mesos.role": "spark"},
			Sizing{HeapMB: 2048, MemMB: 3072, Instances: 3, RejectFor: 30 * time.Second, Role: "spark"}},
		{"mesos overhead and factor", map[string]string{"spark.executor.memory": "4g", "spark.executor.memoryOverheadFactor": "0.5"},
			Sizing{HeapMB: 4096, MemMB: 4096 + 2048, Instances: -1, RejectFor: 120 * time.Second}},
		{"dynamic allocation starts at its initial executors", map[string]string{"spark.dynamicAllocation.enabled": "true", "spark.dynamicAllocation.initialExecutors": "2"},
			Sizing{HeapMB: 1024, MemMB: 1408, Instances: 2, RejectFor: 120 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SizingFrom(tc.conf)
			if err != nil {
				t.Fatal(err)
			}
			if got.Cores != tc.want.Cores || got.CoresMax != tc.want.CoresMax || got.HeapMB != tc.want.HeapMB || got.MemMB != tc.want.MemMB ||
				got.Instances != tc.want.Instances || got.RejectFor != tc.want.RejectFor || got.Role != tc.want.Role {
				t.Errorf("SizingFrom(%v) = %+v; want %+v", tc.conf, got, tc.want)
			}
		})
	}
}

func TestSizingFromRefuses(t *testing.T) {
	for conf, want := range map[string]string{
		"spark.executor.cores=0":                   `spark.executor.cores="0": not a positive whole number`,
		"spark.executor.cores=two":                 `spark.executor.cores="two"`,
		"spark.cores.max=-1":                       `spark.cores.max="-1"`,
		"spark.executor.memory=lots":               `spark.executor.memory="lots": not a memory size`,
		"spark.executor.memoryOverhead=x":          `spark.executor.memoryOverhead="x"`,
		"spark.mesos.rejectOfferDuration=soon":     `spark.mesos.rejectOfferDuration="soon"`,
		"spark.mesos.constraints=:a":               `spark.mesos.constraints=":a"`,
		"spark.executor.instances=-2":              `spark.executor.instances="-2"`,
		"spark.executor.memoryOverheadFactor=-0.1": `spark.executor.memoryOverheadFactor`,
		"spark.locality.wait=a while":              `spark.locality.wait="a while": not a duration`,
	} {
		k, v, _ := strings.Cut(conf, "=")
		_, err := SizingFrom(map[string]string{k: v})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("SizingFrom(%s) = %v; want an error containing %q", conf, err, want)
		}
	}
	_, err := SizingFrom(map[string]string{"spark.executor.cores": "4", "spark.cores.max": "2"})
	if err == nil || !strings.Contains(err.Error(), "no executor could be launched") {
		t.Errorf("executor cores above spark.cores.max: %v", err)
	}
}

func TestSizingLocalityWait(t *testing.T) {
	for v, want := range map[string]time.Duration{"": 3 * time.Second, "0": 0, "500ms": 500 * time.Millisecond, "10s": 10 * time.Second} {
		got, err := SizingFrom(map[string]string{"spark.locality.wait": v})
		if err != nil || got.LocalityWait != want {
			t.Errorf("spark.locality.wait=%q: %v, %v; want %v", v, got.LocalityWait, err, want)
		}
	}
}

func TestSparkDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"120s": 2 * time.Minute, "2m": 2 * time.Minute, "2min": 2 * time.Minute,
		"500ms": 500 * time.Millisecond, "1h": time.Hour, "1d": 24 * time.Hour, "30": 30 * time.Second} {
		if got, err := sparkDuration(in); err != nil || got != want {
			t.Errorf("sparkDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func text(name, v string) mesos.Attribute {
	return mesos.Attribute{Name: name, Type: mesos.TEXT, Text: &mesos.Value_Text{Value: v}}
}

func TestConstraints(t *testing.T) {
	c, err := ParseConstraints("zone:us-east-1a,us-east-1b; gpu ;mem:16;ports:8080;tags:ssd,fast")
	if err != nil {
		t.Fatal(err)
	}
	good := []mesos.Attribute{
		text("zone", "us-east-1b"),
		text("gpu", "nvidia"),
		{Name: "mem", Type: mesos.SCALAR, Scalar: &mesos.Value_Scalar{Value: 32}},
		{Name: "ports", Type: mesos.RANGES, Ranges: &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: 8000, End: 9000}}}},
		{Name: "tags", Type: mesos.SET, Set: &mesos.Value_Set{Item: []string{"fast", "ssd", "big"}}},
	}
	if ok, why := c.Match(good); !ok {
		t.Errorf("a matching agent refused: %s", why)
	}
	for i, bad := range []mesos.Attribute{
		text("zone", "eu-west-1a"),
		text("gpux", "nvidia"),
		{Name: "mem", Type: mesos.SCALAR, Scalar: &mesos.Value_Scalar{Value: 8}},
		{Name: "ports", Type: mesos.RANGES, Ranges: &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: 9000, End: 9100}}}},
		{Name: "tags", Type: mesos.SET, Set: &mesos.Value_Set{Item: []string{"ssd"}}},
	} {
		attrs := append([]mesos.Attribute(nil), good...)
		attrs[i] = bad
		if ok, _ := c.Match(attrs); ok {
			t.Errorf("an agent with %+v matched %v", bad, c)
		}
	}
	if ok, why := (Constraints{}).Match(nil); !ok {
		t.Errorf("no constraints refused an agent: %s", why)
	}
	for _, s := range []string{"zone:", ":a", "zone:a;zone:b"} {
		if _, err := ParseConstraints(s); err == nil {
			t.Errorf("ParseConstraints(%q) took it", s)
		}
	}
}
