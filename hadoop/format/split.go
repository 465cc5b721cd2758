// Package format holds the input and output formats of MapReduce jobs:
// listing and splitting input files (Hadoop's FileInputFormat), reading
// records from a split (TextInputFormat, KeyValueTextInputFormat,
// TeraInputFormat), writing records (TextOutputFormat, TeraOutputFormat)
// and committing task output (FileOutputCommitter).
package format

import (
	"cmp"
	"errors"
	"fmt"
	iofs "io/fs"
	"math"
	"path"
	"slices"
	"strings"

	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/fs"
)

// Split is the part of one input file a map task reads.
type Split struct {
	Path   string `json:"path"` // as the job names it: a local path or a URI
	Start  int64  `json:"start"`
	Length int64  `json:"length"`
	// Hosts is where the data lives, for locality: the hosts holding most
	// of the split's bytes, by name, then their IP addresses when the
	// file system knows them, so a slot on an agent registered under
	// either is data-local.
	Hosts []string `json:"hosts,omitempty"`
}

func (s Split) String() string { return fmt.Sprintf("%s:%d+%d", s.Path, s.Start, s.Length) }

// splitSlop is FileInputFormat's SPLIT_SLOP: the last split may be up to
// 10% larger than the split size rather than leave a sliver.
const splitSlop = 1.1

// ErrInput marks problems with a job's input paths.
var ErrInput = errors.New("bad input")

// InputFile is one file a job reads.
type InputFile struct {
	Path string // the job's name for it (local path or URI)
	Size int64
}

// ListInputs expands the job's input paths (comma-separated in
// mapreduce.input.fileinputformat.inputdir) as FileInputFormat.listStatus
// does: globs are expanded, directories are replaced by the files in them,
// names starting with '_' or '.' are skipped, and subdirectories are an
// error unless the input is recursive. Every problem is reported.
func ListInputs(resolve fs.Resolver, c conf.Conf) ([]InputFile, error) {
	recursive, err := c.Bool(conf.InputRecursive, false)
	if err != nil {
		return nil, err
	}
	var out []InputFile
	var problems []string
	for _, in := range InputPaths(c) {
		fsys, p, err := resolve(in)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		prefix := strings.TrimSuffix(in, p) // scheme://authority, or ""
		matches := []string{p}
		if fs.IsGlob(p) {
			matches, err = fsys.Glob(p)
			if err != nil {
				problems = append(problems, fmt.Sprintf("input pattern %s: %v", in, err))
				continue
			}
			matches = slices.DeleteFunc(matches, func(m string) bool { return hidden(path.Base(m)) })
			if len(matches) == 0 {
				problems = append(problems, fmt.Sprintf("input pattern %s matches 0 files", in))
				continue
			}
		}
		for _, m := range matches {
			files, err := listPath(fsys, prefix, m, recursive)
			if err != nil {
				problems = append(problems, err.Error())
				continue
			}
			for _, f := range files {
				out = append(out, InputFile{Path: prefix + f.Path, Size: f.Size})
			}
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrInput, strings.Join(problems, "; "))
	}
	return out, nil
}

// InputPaths returns the job's input paths.
func InputPaths(c conf.Conf) []string {
	var out []string
	for _, p := range strings.Split(c.Get(conf.InputDir), ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func hidden(name string) bool { return strings.HasPrefix(name, "_") || strings.HasPrefix(name, ".") }

// listPath lists p on fsys; prefix (scheme://authority, or "") names the
// file system in messages.
func listPath(fsys fs.FileSystem, prefix, p string, recursive bool) ([]InputFile, error) {
	fi, err := fsys.Stat(p)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, fmt.Errorf("input path does not exist: %s", prefix+p)
	}
	if err != nil {
		return nil, fmt.Errorf("input path %s: %w", prefix+p, err)
	}
	if !fi.IsDir() {
		return []InputFile{{Path: p, Size: fi.Size()}}, nil
	}
	ents, err := fsys.ReadDir(p)
	if err != nil {
		return nil, fmt.Errorf("input directory %s: %w", prefix+p, err)
	}
	var out []InputFile
	for _, e := range ents {
		if hidden(e.Name()) {
			continue
		}
		child := strings.TrimSuffix(p, "/") + "/" + e.Name()
		if e.IsDir() {
			if !recursive {
				return nil, fmt.Errorf("not a file: %s (set %s=true to read subdirectories)", prefix+child, conf.InputRecursive)
			}
			sub, err := listPath(fsys, prefix, child, true)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
			continue
		}
		out = append(out, InputFile{Path: child, Size: e.Size()})
	}
	return out, nil
}

// Splits computes the input splits of a job the way Hadoop's old-API
// FileInputFormat.getSplits does, with the new API's maximum size also
// honoured: the split size is
//
//	max(minSize, min(goalSize, blockSize, maxSize))
//
// where goalSize is the total input over mapreduce.job.maps. Files are cut
// into splits of that size, the last one up to 10% larger; a compressed
// file that cannot be split (.gz, .bz2, .deflate) is one split; an empty
// file is one empty split. Each split carries the hosts holding most of
// its bytes (SplitHosts). Splits are returned largest first, as Hadoop
// submits them.
func Splits(resolve fs.Resolver, c conf.Conf) ([]Split, error) {
	files, err := ListInputs(resolve, c)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: no input files in %s", ErrInput, c.Get(conf.InputDir))
	}
	numMaps, err := c.Int(conf.NumMaps, 2)
	if err != nil {
		return nil, err
	}
	minSize, err := c.Int(conf.SplitMinSize, 1)
	if err != nil {
		return nil, err
	}
	maxSize, err := c.Int(conf.SplitMaxSize, math.MaxInt64)
	if err != nil {
		return nil, err
	}
	if maxSize <= 0 {
		return nil, fmt.Errorf("property %s=%d: must be positive", conf.SplitMaxSize, maxSize)
	}
	var total int64
	for _, f := range files {
		total += f.Size
	}
	goal := total / max(numMaps, 1)
	if goal <= 0 {
		goal = math.MaxInt64
	}
	var out []Split
	for _, f := range files {
		codec, err := CodecFor(f.Path)
		if err != nil {
			return nil, err
		}
		fsys, p, err := resolve(f.Path)
		if err != nil {
			return nil, err
		}
		blocks, err := fsys.Blocks(p)
		if err != nil {
			return nil, fmt.Errorf("blocks of %s: %w", f.Path, err)
		}
		if f.Size == 0 {
			out = append(out, Split{Path: f.Path})
			continue
		}
		if codec != "" {
			out = append(out, Split{Path: f.Path, Length: f.Size, Hosts: SplitHosts(blocks, 0, f.Size)})
			continue
		}
		blockSize := int64(32 << 20)
		if len(blocks) > 0 && blocks[0].Length > 0 {
			blockSize = blocks[0].Length
		}
		size := max(minSize, min(goal, blockSize, maxSize))
		left := f.Size
		for float64(left)/float64(size) > splitSlop {
			off := f.Size - left
			out = append(out, Split{Path: f.Path, Start: off, Length: size, Hosts: SplitHosts(blocks, off, size)})
			left -= size
		}
		if left > 0 {
			off := f.Size - left
			out = append(out, Split{Path: f.Path, Start: off, Length: left, Hosts: SplitHosts(blocks, off, left)})
		}
	}
	slices.SortStableFunc(out, func(a, b Split) int { return cmp.Compare(b.Length, a.Length) })
	return out, nil
}

// SplitHosts picks the hosts of the split [start, start+length) of a file
// with the given blocks, as Hadoop's FileInputFormat.getSplitHosts does
// (without racks): every host is weighted by the bytes of the split in the
// blocks it holds a replica of, and the heaviest hosts are returned, as
// many as the block holding most of the split has replicas; ties go to the
// host listed first. A split inside one block gets that block's hosts. The
// hosts' IP addresses (Block.Addrs) follow their names.
func SplitHosts(blocks []fs.Block, start, length int64) []string {
	end := start + length
	type weight struct {
		host, addr string
		bytes      int64
		order      int
	}
	weights := map[string]*weight{}
	replicas := -1
	var most int64 = -1
	for _, b := range blocks {
		overlap := min(end, b.Offset+b.Length) - max(start, b.Offset)
		if overlap <= 0 {
			continue
		}
		if overlap > most {
			most, replicas = overlap, len(b.Hosts)
		}
		for i, h := range b.Hosts {
			w := weights[h]
			if w == nil {
				w = &weight{host: h, order: len(weights)}
				weights[h] = w
			}
			if w.addr == "" && i < len(b.Addrs) {
				w.addr = b.Addrs[i]
			}
			w.bytes += overlap
		}
	}
	if len(weights) == 0 {
		return nil
	}
	ranked := make([]*weight, 0, len(weights))
	for _, w := range weights {
		ranked = append(ranked, w)
	}
	slices.SortFunc(ranked, func(a, b *weight) int {
		if c := cmp.Compare(b.bytes, a.bytes); c != 0 {
			return c
		}
		return cmp.Compare(a.order, b.order)
	})
	ranked = ranked[:min(len(ranked), max(replicas, 1))]
	var out []string
	for _, w := range ranked {
		out = append(out, w.host)
	}
	for _, w := range ranked {
		if w.addr != "" && !slices.Contains(out, w.addr) {
			out = append(out, w.addr)
		}
	}
	return out
}
