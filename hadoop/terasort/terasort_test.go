package terasort

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// The squaring that builds the skip table reproduces the constants in
// Hadoop's Random16.genArray, which checks the 128-bit arithmetic.
func TestSkipTableMatchesRandom16(t *testing.T) {
	for i, want := range []struct{ a, c string }{
		{"2360ed051fc65da44385df649fccf645", "4a696d47726179524950202020202001"},
		{"17bce35bdf69743c529ed9eb20e0ae99", "95e0e48262b3edfe04479485c755b646"},
		{"f4dd417327db7a9bd194dfbe42d45771", "882a02c315362b60765f100068b33a1c"},
		{"6347af777a7898f6d1a2d6f33505ffe1", "5efc4abfaca23e8ca8edb1f2dfbf6478"},
	} {
		got := step[i]
		if hex32(got.a) != want.a || hex32(got.c) != want.c {
			t.Errorf("step %d = %s %s, want %s %s", i, hex32(got.a), hex32(got.c), want.a, want.c)
		}
	}
	// The last entries of Random16's table.
	if hex32(step[127].a) != "00000000000000000000000000000001" || hex32(step[127].c) != "80000000000000000000000000000000" {
		t.Errorf("step 127 = %s %s", hex32(step[127].a), hex32(step[127].c))
	}
}

func hex32(u Uint128) string {
	s := u.String()
	for len(s) < 32 {
		s = "0" + s
	}
	return s
}

func TestSkipAheadEqualsStepping(t *testing.T) {
	var r Uint128
	for n := uint64(0); n < 3000; n++ {
		if got := skipAhead(Uint128{Lo: n}); got != r {
			t.Fatalf("skipAhead(%d) = %v, stepping gives %v", n, got, r)
		}
		r = next(r)
	}
}

func TestRecordLayout(t *testing.T) {
	var buf bytes.Buffer
	if _, err := Generate(&buf, 41, 2, false); err != nil {
		t.Fatal(err)
	}
	rec := buf.Bytes()[:RecordLen]
	if !bytes.Equal(rec[10:12], []byte{0x00, 0x11}) || string(rec[12:44]) != "00000000000000000000000000000029" ||
		!bytes.Equal(rec[44:48], []byte{0x88, 0x99, 0xAA, 0xBB}) || !bytes.Equal(rec[96:100], []byte{0xCC, 0xDD, 0xEE, 0xFF}) {
		t.Fatalf("binary record %x", rec)
	}
	for i := 0; i < 12; i++ {
		g := rec[48+4*i : 52+4*i]
		if g[0] != g[1] || g[1] != g[2] || g[2] != g[3] || !bytes.ContainsRune([]byte("0123456789ABCDEF"), rune(g[0])) {
			t.Fatalf("filler group %d: %q", i, g)
		}
	}
	// The key is the top of the random number that the filler digits
	// also come from: hex digits 20.. are bytes 10.. of the same number.
	rand := next(skipAhead(Uint128{Lo: 41}))
	if !bytes.Equal(rec[:10], []byte{rand.byteAt(0), rand.byteAt(1), rand.byteAt(2), rand.byteAt(3), rand.byteAt(4), rand.byteAt(5), rand.byteAt(6), rand.byteAt(7), rand.byteAt(8), rand.byteAt(9)}) {
		t.Fatal("key is not the random number's high bytes")
	}

	buf.Reset()
	Generate(&buf, 0, 3, true)
	for i := 0; i < 3; i++ {
		r := buf.Bytes()[i*RecordLen : (i+1)*RecordLen]
		for _, c := range r[:10] {
			if c < ' ' || c > '~' {
				t.Fatalf("ascii key %q", r[:10])
			}
		}
		if string(r[98:]) != "\r\n" || string(r[10:12]) != "  " || string(r[44:46]) != "  " {
			t.Fatalf("ascii record %q", r)
		}
	}
}

// The same rows come out whatever the number of files.
func TestGenerateDirIsIndependentOfFileCount(t *testing.T) {
	dir := t.TempDir()
	one, err := GenerateDir(context.Background(), filepath.Join(dir, "one"), 1234, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	five, err := GenerateDir(context.Background(), filepath.Join(dir, "five"), 1234, 5, false)
	if err != nil {
		t.Fatal(err)
	}
	if one != five {
		t.Fatalf("checksums %v and %v", one, five)
	}
	whole, _ := os.ReadFile(filepath.Join(dir, "one", "part-00000"))
	var joined []byte
	for i := 0; i < 5; i++ {
		b, _ := os.ReadFile(filepath.Join(dir, "five", "part-0000"+string(rune('0'+i))))
		joined = append(joined, b...)
	}
	if !bytes.Equal(whole, joined) || len(whole) != 1234*RecordLen {
		t.Fatal("files differ")
	}
	if _, err := GenerateDir(context.Background(), filepath.Join(dir, "one"), 1, 1, false); err == nil {
		t.Fatal("overwrote an existing directory")
	}
	// Unsorted input fails validation, with the checksum still computed.
	rep, err := Validate(context.Background(), filepath.Join(dir, "five"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Records != 1234 || rep.Checksum != one {
		t.Fatalf("report %+v", rep)
	}
}
