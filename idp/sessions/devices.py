"""What an SSO session remembers about the device it started on, for the person's sessions page:
a short browser and platform name from the User-Agent, and the client address masked to its
network (/24 for IPv4, /48 for IPv6). Neither the full User-Agent nor the full address is kept.
"""

from __future__ import annotations

import ipaddress
import re

from idp.sessions.browser import client_address

# Order matters: many browsers also claim to be Chrome and Safari.
_BROWSERS: tuple[tuple[str, str], ...] = (
    (r"\bZalo\b", "Zalo"),
    (r"\bcoc_coc_browser/", "Cốc Cốc"),
    (r"\bEdg(?:e|A|iOS)?/", "Edge"),
    (r"\b(?:OPR|Opera)/", "Opera"),
    (r"\bSamsungBrowser/", "Samsung Internet"),
    (r"\bFBA[NV]\b", "Facebook"),
    (r"\b(?:Firefox|FxiOS)/", "Firefox"),
    (r"\bCriOS/", "Chrome"),
    (r"\b(?:HeadlessChrome|Chrome|Chromium)/", "Chrome"),
    (r"\bVersion/[\d.]+.*\bSafari/", "Safari"),
)
_PLATFORMS: tuple[tuple[str, str], ...] = (
    (r"\bAndroid\b", "Android"),
    (r"\b(?:iPhone|iPod)\b", "iPhone"),
    (r"\biPad\b", "iPad"),
    (r"\bCrOS\b", "ChromeOS"),
    (r"\bWindows\b", "Windows"),
    (r"\bMac OS X\b|\bMacintosh\b", "macOS"),
    (r"\bLinux\b", "Linux"),
)


def describe_user_agent(user_agent: str | None) -> tuple[str, str]:
    """(browser, platform) names, each "" when not recognised."""
    ua = (user_agent or "")[:512]
    browser = next((name for pattern, name in _BROWSERS if re.search(pattern, ua)), "")
    platform = next((name for pattern, name in _PLATFORMS if re.search(pattern, ua)), "")
    return browser, platform


def mask_address(address: str | None) -> str:
    """203.113.10.25 -> 203.113.10.0/24; 2001:db8:1:2::5 -> 2001:db8:1::/48; anything else -> ""."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def this_device() -> dict[str, str]:
    """What a new SSO session records about the browser of the current request."""
    from flask import request

    browser, platform = describe_user_agent(request.headers.get("User-Agent"))
    return {"browser": browser, "platform": platform, "address": mask_address(client_address())}
