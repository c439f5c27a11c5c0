# Turns a text file into a C string constant: cmake -DIN= -DOUT= -DSYMBOL= -P embed.cmake
file(READ ${IN} content)
string(REPLACE "\\" "\\\\" content "${content}")
string(REPLACE "\"" "\\\"" content "${content}")
string(REPLACE "\n" "\\n\"\n\"" content "${content}")
file(WRITE ${OUT} "/* generated from ${IN}; do not edit */\nconst char ${SYMBOL}[] = \"${content}\";\n")
