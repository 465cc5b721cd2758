package terasort

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path"
	"strings"
	"sync"

	"github.com/agora-cluster/agora/hadoop/fs"
)

// Report is TeraValidate's verdict on a directory of sorted records.
type Report struct {
	Files    int
	Records  uint64
	Checksum Uint128  // the same sum TeraGen reports for the input
	Errors   []string // misorders and bad partitioning; empty when valid
}

// OK reports whether the output is globally sorted.
func (r Report) OK() bool { return len(r.Errors) == 0 }

type fileReport struct {
	name        string
	first, last []byte
	records     uint64
	sum         Uint128
	errors      []string
}

// maxErrorsPerFile bounds the misorders reported for one file.
const maxErrorsPerFile = 10

// Validate is TeraValidate: it reads the part files of dir (in name order,
// in parallel), checks that the keys within each file never decrease and
// that each file's first key is not below the previous file's last, and
// sums the CRC-32 of every record.
func Validate(ctx context.Context, dir string) (Report, error) {
	fsys, p, err := fs.Lookup(dir, 0)
	if err != nil {
		return Report{}, err
	}
	ents, err := fsys.ReadDir(p)
	if err != nil {
		return Report{}, fmt.Errorf("teravalidate: %w", err)
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() && strings.HasPrefix(e.Name(), "part-") {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return Report{}, fmt.Errorf("teravalidate: no part files in %s", dir)
	}
	reps := make([]fileReport, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, name := range names {
		wg.Add(1)
		go func(i int, name string) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			reps[i], errs[i] = validateFile(ctx, fsys, path.Join(p, name))
			reps[i].name = name
		}(i, name)
	}
	wg.Wait()
	r := Report{Files: len(names)}
	var prev *fileReport
	for i := range reps {
		if errs[i] != nil {
			return Report{}, errs[i]
		}
		f := &reps[i]
		r.Records += f.records
		r.Checksum = r.Checksum.Add(f.sum)
		r.Errors = append(r.Errors, f.errors...)
		if f.records == 0 {
			continue
		}
		if prev != nil && bytes.Compare(prev.last, f.first) > 0 {
			r.Errors = append(r.Errors, fmt.Sprintf("bad key partitioning: %s ends with %x, %s starts with %x", prev.name, prev.last, f.name, f.first))
		}
		prev = f
	}
	return r, nil
}

func validateFile(ctx context.Context, fsys fs.FileSystem, name string) (fileReport, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return fileReport{}, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	var rep fileReport
	var rec [RecordLen]byte
	var last [KeyLen]byte
	base := path.Base(name)
	for {
		if rep.records%65536 == 0 && ctx.Err() != nil {
			return rep, ctx.Err()
		}
		n, err := io.ReadFull(br, rec[:])
		if err == io.EOF {
			break
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			rep.errors = append(rep.errors, fmt.Sprintf("%s: ends with a partial record of %d bytes", base, n))
			break
		}
		if err != nil {
			return rep, err
		}
		key := rec[:KeyLen]
		if rep.records == 0 {
			rep.first = bytes.Clone(key)
		} else if bytes.Compare(key, last[:]) < 0 && len(rep.errors) < maxErrorsPerFile {
			rep.errors = append(rep.errors, fmt.Sprintf("misorder in %s between %x and %x", base, last, key))
		}
		copy(last[:], key)
		rep.records++
		rep.sum = rep.sum.Add(Uint128{Lo: uint64(crc32.ChecksumIEEE(rec[:]))})
	}
	if rep.records > 0 {
		rep.last = bytes.Clone(last[:])
	}
	return rep, nil
}
