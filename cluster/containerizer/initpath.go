package containerizer

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
)

// InitBinaryName is the stand-alone container init that `make build` puts
// beside the agora binary: the C program containerinit/cinit/agora-init.c
// when a C compiler is there, else the Go cmd/agora-init.
const InitBinaryName = "agora-init"

// initSHA256 is the SHA-256 (hex) of the agora-init built with this
// binary, set by the linker (`make build`: -X ...containerizer.initSHA256=).
// Empty: this binary was built without one.
var initSHA256 string

var bundledInit struct {
	once sync.Once
	path string
}

// BundledInit is the program the native containerizer starts as each
// container's init by default: agora-init beside this program's binary if
// its content is exactly the agora-init this binary was built with, else
// /proc/self/exe (this binary). A container's init costs every launch its
// start-up, which for the small Go program is about 0.7 ms of CPU less
// than for the whole agora binary, and for the C one less again; checking
// the content keeps an agora-init of another build, whose protocol may
// differ, from ever being started. It is decided once per process.
func BundledInit(log *slog.Logger) string {
	bundledInit.once.Do(func() {
		bundledInit.path = "/proc/self/exe"
		if initSHA256 == "" {
			// go build or go install: no agora-init was built with this
			// binary, so none beside it can be trusted to speak its
			// protocol. A benchmark of such a build measures the slow
			// init (several milliseconds of CPU more per launch).
			log.Warn("this binary was built without its stand-alone container init (go build or go install, not make build); containers start this binary as their init, which costs every launch more CPU: build with make build to have " + InitBinaryName + " beside it")
			return
		}
		exe, err := os.Executable()
		if err == nil {
			var path string
			if path, err = initBeside(exe, initSHA256); err == nil {
				bundledInit.path = path
				return
			}
		}
		// This binary was built with an agora-init (make build) that is
		// not beside it, or not that one: a copy installed without its
		// init. Every launch then starts the whole agora binary as its
		// container's init, a few milliseconds of CPU more per launch on
		// a small machine, which is worth saying.
		log.Warn("no stand-alone container init beside this binary; containers start this binary as their init, which costs every launch more CPU: install the "+InitBinaryName+" built with it in the same directory",
			"err", err)
	})
	return bundledInit.path
}

// initBeside is the agora-init beside the binary exe if its SHA-256 is
// want; otherwise the error says why not.
func initBeside(exe, want string) (string, error) {
	path := filepath.Join(filepath.Dir(exe), InitBinaryName)
	sum, err := fileSHA256(path)
	if err != nil {
		return "", err
	}
	if sum != want {
		return "", fmt.Errorf("%s is of another build (SHA-256 %s, this binary was built with %s)", path, sum, want)
	}
	return path, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
