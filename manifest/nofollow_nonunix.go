//go:build !unix

package manifest

const oNoFollow = 0

func isSymlinkErr(error) bool { return false }
