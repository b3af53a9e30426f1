# Everything about the package is in pyproject.toml; setup.py only declares the
# optional C extension, which pyproject.toml cannot.
from setuptools import Extension, setup

setup(
    # recvmmsg/sendmmsg for the DNS filter's UDP loop (dns_filter/_mmsg.c); optional:
    # without a compiler dns_filter.udp falls back to Python's recvfrom/sendto.
    ext_modules=[Extension("dns_filter._mmsg", ["dns_filter/_mmsg.c"], optional=True)],
)
