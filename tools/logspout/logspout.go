//go:build tools

// Package tools pins the logspout main package for `go build github.com/gliderlabs/logspout`.
package tools

import _ "github.com/gliderlabs/logspout"
