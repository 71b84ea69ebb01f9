module clogs.test/gopanic

go 1.21
