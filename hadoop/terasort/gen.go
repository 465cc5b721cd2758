package terasort

import (
	"bufio"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/agora-cluster/agora/hadoop/fs"
)

// Record geometry.
const (
	RecordLen = 100
	KeyLen    = 10
)

// BinaryRecord fills rec with the sort benchmark's binary record for row
// number row drawn from random number rand (GenSort.generateRecord): a
// 10-byte key (the high bytes of rand), 0x00 0x11, the row number as 32
// upper-case hex digits, 0x88 0x99 0xAA 0xBB, 48 filler bytes (12 groups of
// four copies of a hex digit of rand), 0xCC 0xDD 0xEE 0xFF.
func BinaryRecord(rec *[RecordLen]byte, rand, row Uint128) {
	for i := 0; i < KeyLen; i++ {
		rec[i] = rand.byteAt(i)
	}
	rec[10], rec[11] = 0x00, 0x11
	for i := 0; i < 32; i++ {
		rec[12+i] = row.hexDigit(i)
	}
	rec[44], rec[45], rec[46], rec[47] = 0x88, 0x99, 0xAA, 0xBB
	for i := 0; i < 12; i++ {
		d := rand.hexDigit(20 + i)
		rec[48+4*i], rec[49+4*i], rec[50+4*i], rec[51+4*i] = d, d, d, d
	}
	rec[96], rec[97], rec[98], rec[99] = 0xCC, 0xDD, 0xEE, 0xFF
}

// ASCIIRecord fills rec with gensort -a's printable record: a 10-character
// key in ' '..'~', two spaces, the row as 32 hex digits, two spaces, 52
// filler bytes (13 groups of four), "\r\n" (GenSort.generateAsciiRecord).
func ASCIIRecord(rec *[RecordLen]byte, rand, row Uint128) {
	t := rand.Hi
	for i := 0; i < 8; i++ {
		rec[i] = byte(' ' + t%95)
		t /= 95
	}
	t = rand.Lo
	rec[8] = byte(' ' + t%95)
	t /= 95
	rec[9] = byte(' ' + t%95)
	rec[10], rec[11] = ' ', ' '
	for i := 0; i < 32; i++ {
		rec[12+i] = row.hexDigit(i)
	}
	rec[44], rec[45] = ' ', ' '
	for i := 0; i < 13; i++ {
		d := rand.hexDigit(19 + i)
		rec[46+4*i], rec[47+4*i], rec[48+4*i], rec[49+4*i] = d, d, d, d
	}
	rec[98], rec[99] = '\r', '\n'
}

// Generate writes count records starting at row first to w and returns
// their checksum: the 128-bit sum of each record's CRC-32, TeraGen's
// CHECKSUM counter. ascii selects gensort -a's printable records.
func Generate(w io.Writer, first, count uint64, ascii bool) (Uint128, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	var sum Uint128
	var rec [RecordLen]byte
	rand := skipAhead(Uint128{Lo: first})
	for row := first; row < first+count; row++ {
		rand = next(rand)
		if ascii {
			ASCIIRecord(&rec, rand, Uint128{Lo: row})
		} else {
			BinaryRecord(&rec, rand, Uint128{Lo: row})
		}
		sum = sum.Add(Uint128{Lo: uint64(crc32.ChecksumIEEE(rec[:]))})
		if _, err := bw.Write(rec[:]); err != nil {
			return sum, err
		}
	}
	return sum, bw.Flush()
}

// ParseRows parses a row count with an optional k, m, b or t suffix
// (powers of 1000), as TeraGen's command line takes it.
func ParseRows(s string) (uint64, error) {
	mult := uint64(1)
	switch {
	case strings.HasSuffix(s, "t"):
		mult = 1e12
	case strings.HasSuffix(s, "b"):
		mult = 1e9
	case strings.HasSuffix(s, "m"):
		mult = 1e6
	case strings.HasSuffix(s, "k"):
		mult = 1e3
	}
	if mult != 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("row count %q: want a number with an optional k, m, b or t", s)
	}
	return n * mult, nil
}

// GenerateDir is TeraGen: it writes rows records into files part files
// (part-00000, ...) of directory dir in parallel, each file a range of
// rows as TeraGen's maps divide them, then _SUCCESS, and returns the
// checksum of all records. dir must not exist.
func GenerateDir(ctx context.Context, dir string, rows uint64, files int, ascii bool) (Uint128, error) {
	fsys, p, err := fs.Lookup(dir, 0)
	if err != nil {
		return Uint128{}, err
	}
	if ok, err := fs.Exists(fsys, p); err != nil {
		return Uint128{}, err
	} else if ok {
		return Uint128{}, fmt.Errorf("teragen: output directory %s already exists", dir)
	}
	if files < 1 {
		files = 1
	}
	sums := make([]Uint128, files)
	errs := make([]error, files)
	var wg sync.WaitGroup
	var first uint64
	for i := 0; i < files; i++ {
		goal := (rows*uint64(i+1) + uint64(files) - 1) / uint64(files) // ceil(rows*(i+1)/files)
		start, count := first, goal-first
		first = goal
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if ctx.Err() != nil {
				errs[i] = ctx.Err()
				return
			}
			w, err := fsys.Create(fs.Join(p, fmt.Sprintf("part-%05d", i)))
			if err != nil {
				errs[i] = err
				return
			}
			sums[i], errs[i] = Generate(w, start, count, ascii)
			if err := w.Close(); errs[i] == nil {
				errs[i] = err
			}
		}(i)
	}
	wg.Wait()
	var sum Uint128
	for i := range sums {
		if errs[i] != nil {
			return Uint128{}, fmt.Errorf("teragen part-%05d: %w", i, errs[i])
		}
		sum = sum.Add(sums[i])
	}
	return sum, fs.WriteFile(fsys, fs.Join(p, "_SUCCESS"), nil)
}
