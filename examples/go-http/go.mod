module example.com/nhdev/greeter

go 1.19
