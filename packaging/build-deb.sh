#!/usr/bin/env bash
# Build the glexec-py Debian package (Debian 12, amd64 or any architecture with the wheels):
#
#   packaging/build-deb.sh [--out DIR]        -> DIR/glexec-py_<version>-<rev>_<arch>.deb
#
# Needs: python3-venv python3-dev gcc libc6-dev libcap-dev dpkg-dev (scripts/install-system-
# packages.sh --runtime installs them), and PyPI (or pip's usual PIP_FIND_LINKS/PIP_NO_INDEX for an
# offline wheelhouse) at build time only. Does not need root: ownership comes from
# dpkg-deb --root-owner-group. Why it is built this way: packaging/README.md.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=$here/dist
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    *) echo "build-deb: unknown option $1" >&2; exit 2 ;;
  esac
done
umask 022
export LC_ALL=C.UTF-8 PIP_DISABLE_PIP_VERSION_CHECK=1
debian=$here/packaging/debian
pkg=glexec-py
upstream=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$here/pyproject.toml")
version=$upstream-$(sed -n '1s/^[^(]*([^-]*-\([^)]*\)).*/\1/p' "$debian/changelog")
arch=$(dpkg --print-architecture)
prefix=/usr/lib/glexec-py                  # the launcher's private Python environment
python=$(readlink -f /usr/bin/python3)     # /usr/bin/python3.11 on bookworm
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
site=$prefix/lib/python$pyver/site-packages
libexec=$prefix/libexec
grep -q "^ -- .*\$" "$debian/changelog" || { echo "build-deb: bad changelog" >&2; exit 1; }
[ "$(sed -n '1s/^[^(]*(\([^-]*\)-.*/\1/p' "$debian/changelog")" = "$upstream" ] ||
  { echo "build-deb: packaging/debian/changelog does not start with version $upstream" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
venv=$root$prefix

echo "build-deb: environment $prefix (python $pyver)" >&2
tar -C "$here" --exclude=.git --exclude='*.egg-info' --exclude=build --exclude='__pycache__' \
    -cf - pyproject.toml README.md glexec_py plugins sutest | (mkdir "$work/src" && tar -C "$work/src" -xf -)
"$python" -m venv "$venv"
# Debian's hardening flags for anything compiled from source here (python-prctl has no wheel).
CFLAGS="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)" \
LDFLAGS="$(dpkg-buildflags --get LDFLAGS)" \
  "$venv/bin/python" -m pip install -q --no-compile --no-warn-script-location --no-cache-dir --use-pep517 \
  "$work/src"
# The environment is read-only for everyone but dpkg: no installer inside it.
"$venv/bin/python" -m pip uninstall -q -y pip setuptools
rm -f "$venv"/bin/activate* "$venv"/bin/Activate.ps1 "$venv"/bin/pip*
rm -rf "$venv/include"
# Only glexec-py's own commands: the dependencies' scripts (cffi-gen-src) are not for sites.
for script in "$venv"/bin/*; do
  case ${script##*/} in
    python|python3|python3.*|glexec-policy|glexec-gridmapdir|glexec-install|glexec-sutest|\
    glexec_wrapenv|glexec_unwrapenv|mkgltempdir|prune_userprocs) ;;
    *) rm -f "$script" ;;
  esac
done
rm -rf "$venv"/lib/python*/site-packages/_distutils_hack "$venv"/lib/python*/site-packages/distutils-precedence.pth
find "$venv" -name __pycache__ -type d -prune -exec rm -rf {} +
# The build happened under $work; make every recorded path the installed one (dh-virtualenv does
# the same): entry-point shebangs (run isolated, -I: no PYTHON* variables, user site or script
# directory), pyvenv.cfg, and the local-build record pip keeps.
for script in "$venv"/bin/*; do
  [ -L "$script" ] && continue
  sed -i "1s|^#!$venv/bin/python.*|#!$prefix/bin/python -I|" "$script"
done
sed -i "s|$venv|$prefix|g" "$venv/pyvenv.cfg"
for dist in "$venv"/lib/python*/site-packages/glexec_py-*.dist-info; do
  rm -f "$dist/direct_url.json"
  sed -i '/direct_url.json/d' "$dist/RECORD"
done
find "$venv" -name '*.so' -type f -exec strip --strip-unneeded --remove-section=.comment \
    --remove-section=.note {} +
if grep -rIl "$work" "$root" >/dev/null; then
  echo "build-deb: build paths left in: $(grep -rIl "$work" "$root" | head -5)" >&2
  exit 1
fi

echo "build-deb: front ends with $prefix and /etc/glexec.conf compiled in" >&2
install -d "$root$libexec"
for mode in setuid declare-only; do
  "$venv/bin/python" -I -c '
import sys
from pathlib import Path
from glexec_py.tools.install import build_frontend
src = Path(sys.argv[1]) / "glexec_py" / "frontend" / "glexec_frontend.c"
build_frontend(source=src, output=Path(sys.argv[2]), python=sys.argv[3],
               bootstrap=sys.argv[4] + "/glexec_py/bootstrap.py", site=sys.argv[4],
               config="/etc/glexec.conf", mode=sys.argv[5])
' "$work/src" "$root$libexec/glexec-$mode" "$python" "$site" "$mode"
done
# The lingering launcher's small waiter, next to waiter.py where the launcher looks for it.
waiter=$venv/lib/python$pyver/site-packages/glexec_py/launch/glexec-py-waiter
"$venv/bin/python" -I -c '
import sys
from pathlib import Path
from glexec_py.tools.install import build_waiter
build_waiter(source=Path(sys.argv[1]), output=Path(sys.argv[2]))
' "$work/src/glexec_py/launch/glexec_waiter.c" "$waiter"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root$libexec"/glexec-* \
    "$waiter"
chmod 0755 "$waiter"
chmod 4755 "$root$libexec/glexec-setuid"
chmod 0755 "$root$libexec/glexec-declare-only"

echo "build-deb: commands, configuration, examples, man pages, docs" >&2
install -d "$root/usr/sbin"
for cmd in glexec-policy glexec-gridmapdir glexec-install glexec-sutest glexec_wrapenv \
           glexec_unwrapenv mkgltempdir prune_userprocs; do
  [ -x "$venv/bin/$cmd" ] || { echo "build-deb: $cmd missing from the environment" >&2; exit 1; }
  ln -s "../lib/glexec-py/bin/$cmd" "$root/usr/sbin/$cmd"
done
ln -s glexec_wrapenv "$root/usr/sbin/glexec_wrapenv.pl"
ln -s glexec_unwrapenv "$root/usr/sbin/glexec_unwrapenv.pl"
install -D -m 0640 "$here/etc/glexec.conf" "$root/etc/glexec.conf"
examples=$root/usr/share/glexec-py/examples
install -d "$examples/lcmaps" "$examples/policy" "$examples/lcas"
install -m 0644 "$here"/etc/lcmaps/*.db "$examples/lcmaps/"
install -m 0644 "$here"/etc/policy/*.yaml "$examples/policy/"
install -m 0644 "$here"/etc/lcas/*.db "$examples/lcas/"
install -m 0644 "$here/etc/grid-mapfile.example" "$examples/grid-mapfile"
"$venv/bin/python" -I -m glexec_py.tools.manpages "$work/man" >/dev/null
find "$venv" -name __pycache__ -type d -prune -exec rm -rf {} +
for page in "$work"/man/*.[1-8]; do
  name=$(basename "$page"); section=${name##*.}
  install -d "$root/usr/share/man/man$section"
  gzip -9n < "$page" > "$root/usr/share/man/man$section/$name.gz"
done
"$venv/bin/python" -I -c '
import sys
from glexec_py.tools.manpages import PAGE_LINKS
for link, target in PAGE_LINKS.items():
    print(link, target)
' | while read -r link target; do
  ln -s "$target.gz" "$root/usr/share/man/man${link##*.}/$link.gz"
done
find "$venv" -name __pycache__ -type d -prune -exec rm -rf {} +
doc=$root/usr/share/doc/$pkg
install -d "$doc"
install -m 0644 "$debian/copyright" "$doc/copyright"
gzip -9n < "$debian/changelog" > "$doc/changelog.Debian.gz"
install -d "$root/usr/share/lintian/overrides"
sed -e '/^#/d' -e '/^$/d' "$debian/lintian-overrides" > "$root/usr/share/lintian/overrides/$pkg"
chmod 0644 "$root/usr/share/lintian/overrides/$pkg"

# Relative interpreter link (lintian: absolute-symlink-in-top-level-folder); the interpreter is
# Debian's own, named with its version so a python3 default change cannot swap it underneath.
ln -sfn "../../../bin/python$pyver" "$venv/bin/python"
ln -sfn python "$venv/bin/python3"
ln -sfn python "$venv/bin/python$pyver"

echo "build-deb: control files" >&2
install -d -m 0755 "$root/DEBIAN"
for script in postinst prerm postrm; do
  sed -e "s|@PREFIX@|$prefix|g" -e "s|@PYTHON@|$python|g" -e "s|@SITE@|$site|g" \
      -e "s|@LIBEXEC@|$libexec|g" -e "s|@PYVER@|$pyver|g" "$debian/$script" > "$root/DEBIAN/$script"
  chmod 0755 "$root/DEBIAN/$script"
done
install -m 0644 "$debian/conffiles" "$root/DEBIAN/conffiles"
# Shared-library dependencies of the front ends and the compiled wheels, as dpkg computes them.
mkdir -p "$work/shlibs/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$pkg" "$pkg" > "$work/shlibs/debian/control"
mapfile -t elves < <(find "$root" -type f \( -name '*.so' -o -name '*.so.*' -o -path "*$libexec/*" \
                                             -o -name glexec-py-waiter \))
private_libs=$(find "$root" -name '*.libs' -type d | sed 's/^/-l/' | tr '\n' ' ')
# shellcheck disable=SC2086
shlibs=$(cd "$work/shlibs" && dpkg-shlibdeps -O --ignore-missing-info $private_libs "${elves[@]}" 2>/dev/null |
         sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "build-deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@SIZE@|$size|" \
    -e "s|@PYTHON_PACKAGE@|python$pyver|" -e "s|@SHLIBS@|$shlibs|" \
    "$debian/control" > "$root/DEBIAN/control"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort |
  xargs -d '\n' md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control"

mkdir -p "$out"
deb=$out/${pkg}_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
