from setuptools import Extension, find_packages, setup

setup(
    name="ispedge",
    version="0.1.0",
    description="ISP edge appliance: subscriber portal, DNS filter, shaper and RADIUS CoA",
    python_requires=">=3.11",
    packages=find_packages(include=["portal*", "dns_filter*", "shaper*", "coa*", "blocklists*"]),
    include_package_data=True,
    # recvmmsg/sendmmsg for the DNS filter's UDP loop (dns_filter/_mmsg.c); optional:
    # without a compiler dns_filter.udp falls back to Python's recvfrom/sendto.
    ext_modules=[Extension("dns_filter._mmsg", ["dns_filter/_mmsg.c"], optional=True)],
    package_data={
        "portal": ["web/templates/*.html", "web/static/*", "web/static/**/*",
                   "store/migrations/sql/*.sql", "core/billing/fonts/*"],
        # The journal contract: read by dns_filter (importlib.resources) and by the portal.
        "dns_filter": ["journal_contract.json"],
        "coa": ["dictionaries/*"],
        "blocklists": ["data/*"],
    },
    install_requires=[
        "sanic>=25.12",
        "sanic-ext>=25.12",
        "pydantic>=2",  # sanic-ext imports it unconditionally
        "tortoise-orm>=1.1.9",
        "aiosqlite",
        "asyncpg",
        "psycopg[binary]>=3.2",
        "twisted>=26.10",
        "dnslib>=0.9.26",
        "pyroute2>=0.9.7",
        "pyrad>=2.6",
        "pyjwt>=2.15",
        "jinja2>=3.1",
        "fpdf2>=2.8",
        "uharfbuzz",  # fpdf2 text shaping: Arabic joins and runs right-to-left
        "marisa-trie>=1.4",
        "httpx>=0.27",  # the portal calls the TR-069 ACS (GenieACS NBI)
    ],
    extras_require={
        "test": [
            "pytest>=9",
            "pytest-asyncio>=1.5",
            "hypothesis",
            "dnspython",
            "httpx",
            "playwright>=1.65",
            "ruff",
        ],
    },
    entry_points={"console_scripts": ["ispedge=portal.main:main"]},
)
