//go:build linux

package redisproc

import "syscall"

// SysProcAttr makes the kernel kill a child (a server, an app) if the
// process that started it dies, so a crashed benchmark or test leaves
// nothing behind.
func SysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
