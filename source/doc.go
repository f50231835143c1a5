// Package source fetches the desired state's files from where operators keep
// them: a git repository (go-git; ssh, https or file remotes; a branch, a tag
// or a pinned commit; optional OpenPGP commit verification) or a local
// directory watched with fsnotify. It hands desired.Parse a map of file
// names to contents and says which revision they came from; it never parses
// YAML itself.
package source
