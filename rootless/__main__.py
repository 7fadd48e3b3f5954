from rootless.cli import entry

entry()
