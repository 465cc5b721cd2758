// Package dist assembles upstream engines' distributions — the home
// directory a user would otherwise unpack from an upstream tarball — from
// their published jars on Maven Central.
//
// Each known distribution is a small, version-pinned description embedded
// in the binary (descriptions/NAME/VERSION/): a Maven POM whose runtime
// dependencies are the distribution's lib/, plus the bin/ launch scripts and
// conf/ defaults of its home. Install runs Maven (`mvn`, with strict
// checksums, so every jar is checked against the checksum Central publishes)
// to copy the dependencies into a staging directory beside the cache, lays
// out bin/ and conf/, records the SHA-256 of every file in dist.json and
// renames the staging directory into place, so a home either exists whole
// or not at all. A second Install verifies the recorded checksums and asks
// no registry: installation is idempotent and offline after the first run.
//
// The cache is ~/.cache/agora/dist (AGORA_DIST_DIR, or Installer.Dir);
// each home is DIR/NAME-VERSION. Installs into one cache are serialised by
// a lock file, so concurrent installers (test packages, agents) wait for one
// another instead of racing.
package dist
