#!/usr/bin/env bash
# Install what the browser tests need: Debian's Chromium (Playwright drives it through
# executable_path=/usr/bin/chromium; Playwright's own browser download is not used) and fonts
# for Japanese text and the 👍/👎 feedback buttons. Safe to run again: it does nothing when all
# packages are present. Installing needs root (CI runs as root); without root it only warns.
set -euo pipefail

packages=(chromium fonts-ipafont-gothic fonts-noto-color-emoji)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ "${#missing[@]}" -eq 0 ] && [ -x /usr/bin/chromium ]; then
  echo "install-browser: chromium and fonts are already installed"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-browser: not root, so not installing ${missing[*]}; the browser tests will be skipped" >&2
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
dpkg-query -W "${packages[@]}"
