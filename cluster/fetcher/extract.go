package fetcher

import (
	"archive/tar"
	"archive/zip"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
)

type archive int

const (
	notArchive archive = iota
	archiveTar
	archiveTarGz
	archiveTarBz2
	archiveZip
	archiveGz // a single gzip-compressed file
	archiveUnsupported
)

// archiveKind recognises an archive by its file name, as Mesos does.
func archiveKind(name string) archive {
	n := strings.ToLower(name)
	switch {
	case strings.HasSuffix(n, ".tar.gz"), strings.HasSuffix(n, ".tgz"):
		return archiveTarGz
	case strings.HasSuffix(n, ".tar.bz2"), strings.HasSuffix(n, ".tbz2"):
		return archiveTarBz2
	case strings.HasSuffix(n, ".tar"):
		return archiveTar
	case strings.HasSuffix(n, ".zip"):
		return archiveZip
	case strings.HasSuffix(n, ".tar.xz"), strings.HasSuffix(n, ".txz"), strings.HasSuffix(n, ".xz"):
		return archiveUnsupported
	case strings.HasSuffix(n, ".gz"):
		return archiveGz
	}
	return notArchive
}

// errEscape marks an archive entry that would land outside the sandbox.
var errEscape = errors.New("leads outside the sandbox")

// Bounds on one entry's name. Without them the entry limit does not bound
// the work: a PAX name may be a mebibyte, "a/a/a/..." half a million
// directories deep. Linux's PATH_MAX is 4096; real archives stay far
// under both.
const (
	maxNameLen   = 4096
	maxNameDepth = 256
)

var (
	errNameTooLong = fmt.Errorf("the name is longer than the fetcher's limit of %d bytes", maxNameLen)
	errNameTooDeep = fmt.Errorf("the name is more than the fetcher's limit of %d directories deep", maxNameDepth)
)

// checkName applies the name bounds to a cleaned, slash-separated name.
func checkName(name string) error {
	if len(name) > maxNameLen {
		return errNameTooLong
	}
	if strings.Count(name, "/") >= maxNameDepth {
		return errNameTooDeep
	}
	return nil
}

// extractArchive unpacks in (an archive of the given kind, fetched as
// name) into dir, a directory relative to root. It returns the paths it
// created. An entry that would land outside root fails the whole
// extraction, and so does ctx ending; what was already written stays
// (the task does not start anyway).
func extractArchive(ctx context.Context, in *os.File, name string, kind archive, root *os.Root, dir string, limit int64, maxEntries int) ([]string, error) {
	x := &extractor{ctx: ctx, root: root, dir: dir, budget: limit, limit: limit, maxEntries: maxEntries, dirs: map[string]bool{}}
	switch kind {
	case archiveTar:
		return x.created, x.tar(in)
	case archiveTarGz:
		zr, err := gzip.NewReader(in)
		if err != nil {
			return nil, fmt.Errorf("not a gzip file: %w", err)
		}
		defer zr.Close()
		return x.created, x.tar(zr)
	case archiveTarBz2:
		return x.created, x.tar(bzip2.NewReader(in))
	case archiveZip:
		fi, err := in.Stat()
		if err != nil {
			return nil, err
		}
		return x.created, x.zip(in, fi.Size())
	case archiveGz:
		return x.created, x.gunzip(in, strings.TrimSuffix(path.Base(name), path.Ext(name)))
	case archiveUnsupported:
		return nil, errors.New("xz archives are not supported; set extract=false to fetch the file as is")
	}
	return nil, fmt.Errorf("not an archive")
}

type extractor struct {
	ctx     context.Context
	root    *os.Root
	dir     string
	budget  int64 // bytes left under the limit
	limit   int64
	created []string
	// entries counts the archive's entries read so far, maxEntries
	// bounds them (skipped ones too: reading them costs as much).
	// Directories created count as entries too: one entry "a/b/c/f"
	// makes three.
	entries, maxEntries int
	// dirs holds the directories known to be real directories (not
	// symlinks) reached through real directories only, so that an
	// entry's parents are looked up once, not once per entry and level.
	// An entry replacing one of them drops it (see clear).
	dirs map[string]bool
}

// countEntry refuses the entry past the archive's bound, or any entry
// once the fetch is cancelled.
func (x *extractor) countEntry() error {
	return x.count(1)
}

// count adds n entries (or directories made) to the archive's count.
func (x *extractor) count(n int) error {
	if err := x.ctx.Err(); err != nil {
		return fmt.Errorf("extraction stopped: %w", err)
	}
	x.entries += n
	if x.maxEntries > 0 && x.entries > x.maxEntries {
		return fmt.Errorf("the archive has more than the fetcher's limit of %d entries (directories it makes count)", x.maxEntries)
	}
	return nil
}

// target turns an entry name into a path relative to root, refusing any
// that climbs out.
func (x *extractor) target(name string) (string, error) {
	if strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("entry %q: contains a NUL byte", name)
	}
	name = strings.ReplaceAll(name, "\\", "/")
	if path.IsAbs(name) {
		return "", fmt.Errorf("entry %q is an absolute path that %w", name, errEscape)
	}
	if len(name) > maxNameLen {
		// Checked before cleaning, which costs as much as the name is long.
		return "", fmt.Errorf("entry %.64q...: %w", name, errNameTooLong)
	}
	clean := path.Clean(name)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("entry %q %w", name, errEscape)
	}
	if err := checkName(clean); err != nil {
		return "", fmt.Errorf("entry %.64q...: %w", name, err)
	}
	return path.Join(x.dir, clean), nil
}

// symlinkOK refuses links at p that point outside the sandbox.
func (x *extractor) symlinkOK(p, target string) error {
	if path.IsAbs(target) {
		return fmt.Errorf("symlink to the absolute path %q %w", target, errEscape)
	}
	resolved := path.Join(path.Dir(p), target)
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return fmt.Errorf("symlink to %q %w", target, errEscape)
	}
	return nil
}

// mkdirAll makes directory p and its missing parents. It looks each
// directory up at most once per extraction (dirs remembers them), and the
// ones it makes count against the entry limit.
func (x *extractor) mkdirAll(p string) error {
	// unknown: p and its parents not in dirs, deepest first.
	var unknown []string
	for d := p; d != "." && d != "/" && d != "" && !x.dirs[d]; d = path.Dir(d) {
		unknown = append(unknown, d)
	}
	for i := len(unknown) - 1; i >= 0; i-- {
		d := unknown[i]
		fi, err := x.root.Lstat(d)
		switch {
		case err == nil && fi.IsDir():
			x.dirs[d] = true
		case errors.Is(err, fs.ErrNotExist):
			// d is missing, so is everything under it.
			return x.create(p, unknown[:i+1], true)
		case err == nil && fi.Mode()&fs.ModeSymlink != 0:
			// Under a link, names do not say where things are: find the
			// missing part by halving, and remember nothing.
			rest := unknown[:i]
			n := sort.Search(len(rest), func(j int) bool {
				_, err := x.root.Lstat(rest[len(rest)-1-j])
				return err != nil
			})
			return x.create(p, rest[:len(rest)-n], false)
		default:
			// A file in the way, or a lookup error: MkdirAll says which.
			return x.root.MkdirAll(p, 0o755)
		}
	}
	return nil
}

// create makes p, whose missing directories are missing (deepest first);
// real says they are under real directories only, to be remembered.
func (x *extractor) create(p string, missing []string, real bool) error {
	if err := x.count(len(missing)); err != nil {
		return err
	}
	if err := x.root.MkdirAll(p, 0o755); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		x.created = append(x.created, missing[i])
		if real {
			x.dirs[missing[i]] = true
		}
	}
	return nil
}

// clear removes whatever is at p, so a link can be created there.
func (x *extractor) clear(p string) error {
	// Whatever replaces p, it is no longer a known directory; nothing
	// under it is known either, since only an empty directory goes.
	delete(x.dirs, p)
	if err := x.root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (x *extractor) writeFile(p string, mode fs.FileMode, r io.Reader) error {
	if err := x.mkdirAll(path.Dir(p)); err != nil {
		return err
	}
	// A symlink left at p by an earlier entry must not redirect the write.
	if fi, err := x.root.Lstat(p); err == nil && !fi.Mode().IsRegular() {
		if err := x.clear(p); err != nil {
			return err
		}
	}
	f, err := x.root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode.Perm())
	if err != nil {
		return err
	}
	n, err := copyCapped(x.ctx, f, r, x.budget)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	x.budget -= n
	if err != nil {
		// The copy read one byte past the budget to see it overflow; the
		// partial file goes, so the sandbox never holds more than the limit.
		_ = x.root.Remove(p)
		if x.budget < 0 {
			return fmt.Errorf("the extracted content exceeds the fetcher's limit of %d bytes", x.limit)
		}
		return err
	}
	x.created = append(x.created, p)
	return nil
}

func (x *extractor) tar(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		if err := x.countEntry(); err != nil {
			return err
		}
		p, err := x.target(hdr.Name)
		if err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = x.mkdirAll(p)
		case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
			err = x.writeFile(p, hdr.FileInfo().Mode(), tr)
		case tar.TypeSymlink:
			if err = x.symlinkOK(p, hdr.Linkname); err == nil {
				err = x.symlink(hdr.Linkname, p)
			}
		case tar.TypeLink:
			var old string
			if old, err = x.target(hdr.Linkname); err != nil {
				err = fmt.Errorf("hard link to %q %w", hdr.Linkname, errEscape)
			} else {
				err = x.link(old, p)
			}
		default:
			continue // devices, fifos, extended headers: nothing to write
		}
		if err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
	}
}

func (x *extractor) symlink(target, p string) error {
	if err := x.mkdirAll(path.Dir(p)); err != nil {
		return err
	}
	// symlinkOK judged the target from p's name; that holds only if no
	// directory on the way to p is itself a symlink.
	for d := path.Dir(p); d != "." && d != "/" && !x.dirs[d]; d = path.Dir(d) {
		if fi, err := x.root.Lstat(d); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("symlink under the symlink %q %w", d, errEscape)
		}
	}
	if err := x.clear(p); err != nil {
		return err
	}
	if err := x.root.Symlink(target, p); err != nil {
		return err
	}
	x.created = append(x.created, p)
	return nil
}

func (x *extractor) link(old, p string) error {
	// A hard link to a symlink is a second symlink with the same target,
	// read from another directory: judged again from p, or "a/b/l ->
	// ../../f" linked as "l" would point two levels above the sandbox.
	if fi, err := x.root.Lstat(old); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		target, err := x.root.Readlink(old)
		if err != nil {
			return err
		}
		if err := x.symlinkOK(p, target); err != nil {
			return fmt.Errorf("hard link to the symlink %q: %w", old, err)
		}
		return x.symlink(target, p)
	}
	if err := x.mkdirAll(path.Dir(p)); err != nil {
		return err
	}
	if err := x.clear(p); err != nil {
		return err
	}
	if err := x.root.Link(old, p); err != nil {
		return err
	}
	x.created = append(x.created, p)
	return nil
}

func (x *extractor) zip(in io.ReaderAt, size int64) error {
	zr, err := zip.NewReader(in, size)
	if err != nil {
		return fmt.Errorf("read zip: %w", err)
	}
	if x.maxEntries > 0 && len(zr.File) > x.maxEntries {
		return fmt.Errorf("the archive has %d entries, more than the fetcher's limit of %d", len(zr.File), x.maxEntries)
	}
	for _, zf := range zr.File {
		if err := x.countEntry(); err != nil {
			return err
		}
		p, err := x.target(zf.Name)
		if err != nil {
			return err
		}
		mode := zf.Mode()
		switch {
		case mode.IsDir() || strings.HasSuffix(zf.Name, "/"):
			err = x.mkdirAll(p)
		case mode&fs.ModeSymlink != 0:
			err = x.zipSymlink(zf, p)
		case mode.IsRegular():
			err = x.zipFile(zf, p, mode)
		default:
			continue
		}
		if err != nil {
			return fmt.Errorf("entry %q: %w", zf.Name, err)
		}
	}
	return nil
}

func (x *extractor) zipFile(zf *zip.File, p string, mode fs.FileMode) error {
	if int64(zf.UncompressedSize64) > x.budget || zf.UncompressedSize64 > 1<<62 {
		return fmt.Errorf("the extracted content exceeds the fetcher's limit of %d bytes", x.limit)
	}
	rc, err := zf.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	if mode.Perm() == 0 {
		mode |= 0o644 // zips written without Unix modes
	}
	return x.writeFile(p, mode, rc)
}

func (x *extractor) zipSymlink(zf *zip.File, p string) error {
	rc, err := zf.Open()
	if err != nil {
		return err
	}
	b, err := io.ReadAll(io.LimitReader(rc, 4096))
	rc.Close()
	if err != nil {
		return err
	}
	target := string(b)
	if err := x.symlinkOK(p, target); err != nil {
		return err
	}
	return x.symlink(target, p)
}

func (x *extractor) gunzip(in io.Reader, name string) error {
	zr, err := gzip.NewReader(in)
	if err != nil {
		return fmt.Errorf("not a gzip file: %w", err)
	}
	defer zr.Close()
	if err := x.countEntry(); err != nil {
		return err
	}
	p, err := x.target(name)
	if err != nil {
		return err
	}
	return x.writeFile(p, 0o644, zr)
}
