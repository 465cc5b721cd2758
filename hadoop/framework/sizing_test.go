package framework

import (
	"testing"
	"time"

	"github.com/agora-cluster/agora/hadoop/conf"
)

func TestSlotsFollowResourcePolicyVariable(t *testing.T) {
	s := Sizing{SlotCPUs: 1, SlotMem: 1024, MapMax: 2, ReduceMax: 2}
	cases := []struct {
		name               string
		cpus, mem, disk    float64
		needMaps, needReds int
		wantMaps, wantReds int
	}{
		{"everything needed fits", 8, 8192, 0, 1, 1, 1, 1},
		{"cpus bound the slots", 3, 8192, 0, 10, 10, 2, 1},
		{"memory bounds the slots", 8, 2048, 0, 10, 10, 1, 1},
		{"maps only", 8, 8192, 0, 10, 0, 2, 0},
		{"reduces only", 8, 8192, 0, 0, 5, 0, 2},
		{"ratio clamped to a quarter", 4, 8192, 0, 100, 1, 2, 1},
		{"no room for a slot", 0.5, 8192, 0, 3, 3, 0, 0},
		{"nothing needed", 8, 8192, 0, 0, 0, 0, 0},
	}
	for _, c := range cases {
		m, r := s.Slots(c.cpus, c.mem, c.disk, c.needMaps, c.needReds, s.MapMax, s.ReduceMax)
		if m != c.wantMaps || r != c.wantReds {
			t.Errorf("%s: Slots = %d maps %d reduces, want %d %d", c.name, m, r, c.wantMaps, c.wantReds)
		}
	}
	// Disk counts when slots ask for it.
	s.SlotDisk = 1000
	if m, r := s.Slots(8, 8192, 1500, 5, 5, 2, 2); m+r != 1 {
		t.Errorf("1500 MB of disk for 1000 MB slots gave %d+%d slots", m, r)
	}
}

func TestFixedPolicyIsAllOrNothing(t *testing.T) {
	s := Sizing{SlotCPUs: 1, SlotMem: 512, MapMax: 3, ReduceMax: 1, Fixed: true}
	if m, r := s.Slots(4, 4096, 0, 1, 0, 3, 1); m != 3 || r != 1 {
		t.Errorf("fixed with room: %d %d, want 3 1", m, r)
	}
	if m, r := s.Slots(3, 4096, 0, 10, 10, 3, 1); m != 0 || r != 0 {
		t.Errorf("fixed without room: %d %d, want 0 0", m, r)
	}
}

func TestNeededSubtractsIdleSlotsAndKeepsMinimums(t *testing.T) {
	s := Sizing{MinMapSlots: 4}
	if m, r := s.Needed(10, 3, 2, 1); m != 8 || r != 2 {
		t.Errorf("Needed = %d %d, want 8 2", m, r)
	}
	if m, r := s.Needed(0, 0, 1, 0); m != 3 || r != 0 {
		t.Errorf("minimum hot slots: %d %d, want 3 0", m, r)
	}
	if m, r := s.Needed(1, 0, 6, 3); m != 0 || r != 0 {
		t.Errorf("more idle than pending: %d %d, want 0 0", m, r)
	}
}

func TestSizingFromProperties(t *testing.T) {
	c := conf.New()
	c.Set(KeySlotCPUs, "1")
	c.Set(KeySlotMem, "1024")
	c.Set(KeyMapMax, "4")
	c.Set(KeyIdleInterval, "2.5")
	c.Set(KeyFixedPolicy, "true")
	s, err := SizingFrom(c)
	if err != nil {
		t.Fatal(err)
	}
	if s.SlotCPUs != 1 || s.SlotMem != 1024 || s.MapMax != 4 || s.ReduceMax != 2 || !s.Fixed || s.IdleInterval != 2500*time.Millisecond {
		t.Errorf("SizingFrom = %+v", s)
	}
	for key, bad := range map[string]string{KeySlotCPUs: "-1", KeyMapMax: "many", KeyFixedPolicy: "perhaps"} {
		c := conf.New()
		c.Set(key, bad)
		if _, err := SizingFrom(c); err == nil {
			t.Errorf("%s=%s accepted", key, bad)
		}
	}
}
