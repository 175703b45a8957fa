//go:build !linux

package redisproc

import "syscall"

// SysProcAttr is nil where the kernel cannot tie a child to its parent.
func SysProcAttr() *syscall.SysProcAttr { return nil }
