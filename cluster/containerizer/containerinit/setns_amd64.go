package containerinit

// sysSetns is setns(2)'s system call number (package syscall does not
// name it on every architecture).
const sysSetns = 308
