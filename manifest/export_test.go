package manifest

// SetReadFault makes VerifyTree treat a file as unreadable when f returns an error.
func SetReadFault(f func(path string) error) { readFault = f }
