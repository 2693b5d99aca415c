#!/usr/bin/env bash
# build-deb.sh BUILD VERSION: the otelite .deb from the binaries in BUILD,
# with dpkg-deb (no debian/ source tree: the Makefile is the build). Writes
# BUILD/otelite_VERSION_ARCH.deb and prints its path. Depends are computed
# by dpkg-shlibdeps from the binaries' own NEEDED entries, so a library
# added to the Makefile reaches the package without an edit here; the one
# opened with dlopen (libsystemd0, for sd_notify) is named in control.in.
set -euo pipefail
BUILD=$(cd "$1" && pwd)
VERSION=$2
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
arch=$(dpkg --print-architecture)
stage="$BUILD/deb"
root="$stage/root"
out="$BUILD/otelite_${VERSION}_${arch}.deb"

umask 022
rm -rf "$stage"
mkdir -p "$root/DEBIAN"

install -D -m 0755 "$BUILD/otelite" "$root/usr/bin/otelite"
install -D -m 0755 "$BUILD/otelite-loadgen" "$root/usr/bin/otelite-loadgen"
# Debug info stays in the build tree; the package carries what runs.
strip --strip-unneeded --remove-section=.comment --remove-section=.note \
    "$root/usr/bin/otelite" "$root/usr/bin/otelite-loadgen"
install -D -m 0644 "$here/config.yaml" "$root/etc/otelite/config.yaml"
install -D -m 0644 "$top/packaging/systemd/otelite.service" "$root/lib/systemd/system/otelite.service"

doc="$root/usr/share/doc/otelite"
install -D -m 0644 "$here/copyright" "$doc/copyright"
# A native package (no Debian revision) keeps its changelog as changelog.gz.
gzip -9n -c "$here/changelog" > "$doc/changelog.gz"
install -m 0644 "$top/docs/deploy.md" "$doc/deploy.md"
mkdir -p "$root/usr/share/man/man1"
for m in otelite otelite-loadgen; do
    gzip -9n -c "$here/$m.1" > "$root/usr/share/man/man1/$m.1.gz"
done
chmod 0644 "$doc/changelog.gz" "$root"/usr/share/man/man1/*.gz

# dpkg-shlibdeps wants a debian/control naming the package; a throwaway one.
mkdir -p "$stage/src/debian"
printf 'Source: otelite\n\nPackage: otelite\nArchitecture: any\n' > "$stage/src/debian/control"
shlibs=$(cd "$stage/src" && dpkg-shlibdeps -O "$root/usr/bin/otelite" "$root/usr/bin/otelite-loadgen" 2>/dev/null |
    sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "build-deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
    -e "s/@SHLIBS@/$shlibs/" "$here/control.in" > "$root/DEBIAN/control"
echo /etc/otelite/config.yaml > "$root/DEBIAN/conffiles"
for s in postinst prerm postrm; do
    install -m 0755 "$here/$s" "$root/DEBIAN/$s"
done
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
    xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control" "$root/DEBIAN/conffiles"

dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "$out"
