package audit

// placeholder, replaced below
func (b *board) useRealTools(opt Options) error { return nil }
func (b *board) realManifest(path string) bool  { return false }
