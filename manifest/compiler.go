package manifest

import "context"

// CompileJob is one .py file for mpy-cross: Src is read, Out written, and Name (the path
// relative to the app root, '/'-separated) embedded in the .mpy for tracebacks.
type CompileJob struct {
	Src, Out, Name string
}

// A Compiler turns .py files into .mpy files. Package tools/mpy-cross (mpycross) provides
// the implementations: a native mpy-cross on PATH, or the WebAssembly build under Node.js.
type Compiler interface {
	// Compile compiles every job, calling done (if non-nil) once per finished file. An
	// error names the file and carries mpy-cross's message.
	Compile(ctx context.Context, jobs []CompileJob, done func()) error
	// String says which compiler this is, for the build's output.
	String() string
}
