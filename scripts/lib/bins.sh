# shellcheck shell=bash
# Where cargo puts this project's binaries, honouring CARGO_TARGET_DIR and
# build.target-dir (cargo itself says where: `cargo metadata`). Sourced by scripts/*.

# Prints the target directory (absolute).
cargo_target_dir() {
    cargo metadata --format-version 1 --no-deps 2>/dev/null |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'
}

# Prints the directory of the binaries of a profile: bin_dir debug | bin_dir release.
bin_dir() {
    local dir
    dir=$(cargo_target_dir)
    if [ -z "$dir" ]; then
        echo "cannot ask cargo where the binaries are (cargo metadata failed)" >&2
        return 1
    fi
    echo "$dir/$1"
}
