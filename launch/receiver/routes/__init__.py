"""The receiver's routes by concern: WeChat pushes, staff decisions and links, the portfolio, health."""
